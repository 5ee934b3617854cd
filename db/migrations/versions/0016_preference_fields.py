"""Which of a user's preferences are their own: a partial write keeps the rest following.

``user_preferences.user_fields`` names the values the user chose (``channels``,
``locale``, ``time_zone``); the others are the org file's (NULL: the deployment's
default), and a reload of the org file rewrites them. ``PATCH /v1/me/preferences``
adds the fields it carries; ``PUT`` (as before) makes all three the user's. Rows a
user set before (``source = 'user'``, written whole by ``PUT``) own all three.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "user_preferences",
        sa.Column(
            "user_fields",
            postgresql.ARRAY(sa.String(length=16)),
            server_default="{}",
            nullable=False,
        ),
    )
    op.execute(
        "UPDATE user_preferences SET user_fields = '{channels,locale,time_zone}'"
        " WHERE source = 'user'"
    )


def downgrade() -> None:
    op.drop_column("user_preferences", "user_fields")
