//! Phone numbers in the forms Tencent Cloud SMS accepts: E.164 `+8613800138000`, or for the Chinese mainland
//! `008613800138000`, `8613800138000` and bare 11-digit numbers. Spaces and dashes are ignored.

/// The E.164 form, or `None` when it is not a phone number.
pub fn e164(number: &str) -> Option<String> {
    let compact: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = compact
        .strip_prefix('+')
        .map(str::to_owned)
        .or_else(|| compact.strip_prefix("00").map(str::to_owned))
        .unwrap_or_else(|| {
            if compact.len() == 11 && compact.starts_with('1') { format!("86{compact}") } else { compact.clone() }
        });
    let valid = digits.bytes().all(|b| b.is_ascii_digit())
        && (8..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && (!digits.starts_with("86") || (digits.len() == 13 && digits.as_bytes()[2] == b'1'));
    valid.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn forms() {
        for form in ["13800138000", "+8613800138000", "008613800138000", "+86 138-0013-8000"] {
            assert_eq!(e164(form).as_deref(), Some("+8613800138000"), "{form}");
        }
        assert_eq!(e164("+14155550123").as_deref(), Some("+14155550123"));
        for bad in ["12345", "+86 138", "phone", "+8623800138000", ""] {
            assert_eq!(e164(bad), None, "{bad}");
        }
    }
}
