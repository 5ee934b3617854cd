# The service image: `approvals api` by default; the same image runs `approvals worker`
# and `approvals migrate` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APPROVALS_ENV=production \
    APPROVALS_POLICY_DIR=/app/policies \
    APPROVALS_ORG_FILE=/app/org/demo.yaml \
    APPROVALS_DATA_DIR=/tmp/approvals

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(d['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin approvals

USER approvals
EXPOSE 8000
# No HEALTHCHECK here: the worker runs from this image too; compose checks the api's /healthz.
CMD ["approvals", "api", "--host", "0.0.0.0", "--port", "8000"]
