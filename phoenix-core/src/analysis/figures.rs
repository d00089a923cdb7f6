//! Figures as reports show them: fixed decimals with thousands separators.

/// `x` with `decimals` decimals and thousands separators; a value that rounds to zero has no
/// sign.
///
/// ```
/// use phoenix_core::analysis::fixed;
///
/// assert_eq!(fixed(-1234.5, 2), "-1,234.50");
/// assert_eq!(fixed(1_234_567.0, 0), "1,234,567");
/// assert_eq!(fixed(-0.01, 1), "0.0");
/// ```
pub fn fixed(x: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, x.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let negative = x < 0.0 && text.chars().any(|c| matches!(c, '1'..='9'));
    let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
    if negative {
        out.push('-');
    }
    out.push_str(&group(whole));
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// Inserts a comma between groups of three digits.
pub(crate) fn group(digits: &str) -> String {
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
