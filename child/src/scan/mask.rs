//! Masked samples: enough to recognise a finding, never enough to recover the value.

/// `jane.doe@example.com` → `j***@example.com`.
pub fn email(value: &str) -> String {
    match value.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Keeps the last four digits: `**** **** **** 4242`.
pub fn card(digits: &str) -> String {
    let last4: String = digits
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("**** **** **** {last4}")
}

/// `123-45-6789` → `***-**-6789`.
pub fn ssn(value: &str) -> String {
    let last4: String = value
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("***-**-{last4}")
}

/// Keeps the four-letter prefix, which names the key type: `AKIA****************`.
pub fn aws_key_id(value: &str) -> String {
    let prefix: String = value.chars().take(4).collect();
    format!("{prefix}{}", "*".repeat(value.len().saturating_sub(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hide_the_value() {
        assert_eq!(email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(card("4242424242424242"), "**** **** **** 4242");
        assert_eq!(ssn("123-45-6789"), "***-**-6789");
        assert_eq!(aws_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA****************");
    }
}
