// Amounts as the API sends them (decimal strings), subtracted exactly: no float ever
// holds money.
function scaled(text, digits) {
  const [whole, fraction = ""] = String(text).replace(/^-/, "").split(".");
  const value = BigInt(whole + fraction.padEnd(digits, "0"));
  return String(text).startsWith("-") ? -value : value;
}

const DECIMAL = /^-?\d+(?:\.(\d+))?$/;

// a - b as a decimal string with as many decimals as the longer of them; null if either
// is not a decimal.
export function minus(a, b) {
  const ma = DECIMAL.exec(String(a));
  const mb = DECIMAL.exec(String(b));
  if (!ma || !mb) return null;
  const digits = Math.max((ma[1] || "").length, (mb[1] || "").length);
  const value = scaled(a, digits) - scaled(b, digits);
  const sign = value < 0n ? "-" : "";
  const text = (value < 0n ? -value : value).toString().padStart(digits + 1, "0");
  return digits ? sign + text.slice(0, -digits) + "." + text.slice(-digits) : sign + text;
}
