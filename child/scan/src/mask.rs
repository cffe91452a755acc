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

/// Keeps the country code and the last four characters: `DE** **** **** **** **30 00`
/// would still say too much about the bank, so the middle is one run of stars.
pub fn iban(compact: &str) -> String {
    let country: String = compact.chars().take(2).collect();
    format!(
        "{country}{}{}",
        "*".repeat(compact.len().saturating_sub(6)),
        last(compact, 4)
    )
}

/// Keeps the last two digits: `+** *** *** **71`.
pub fn phone(value: &str) -> String {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 2 > digits { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

/// Keeps the first octet, the network's rough size class: `10.*.*.*`.
pub fn ipv4(value: &str) -> String {
    let first = value.split('.').next().unwrap_or_default();
    format!("{first}.*.*.*")
}

/// Keeps the first group: `2001:****`.
pub fn ipv6(value: &str) -> String {
    let first = value.split(':').next().unwrap_or_default();
    format!("{first}:****")
}

/// Any other secret: only its length shows, and the last four characters of a value
/// long enough that four characters give nothing away.
pub fn secret(value: &str) -> String {
    let n = value.chars().count();
    if n >= 12 {
        format!("{}{}", "*".repeat(n - 4), last(value, 4))
    } else {
        "*".repeat(n.max(3))
    }
}

fn last(value: &str, k: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    chars[chars.len().saturating_sub(k)..].iter().collect()
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
        assert_eq!(iban("DE89370400440532013000"), "DE****************3000");
        assert_eq!(phone("+1 415 555 2671"), "+* *** *** **71");
        assert_eq!(ipv4("192.168.1.20"), "192.*.*.*");
        assert_eq!(ipv6("2001:db8::1"), "2001:****");
        assert_eq!(
            secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            format!("{}EKEY", "*".repeat(36))
        );
        assert_eq!(secret("abc"), "***");
    }
}
