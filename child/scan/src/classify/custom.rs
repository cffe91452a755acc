//! Custom classifiers from `classifiers.custom`: a regex, an optional validator, context
//! words that raise confidence and an allow-list of values to ignore. Compiled once
//! per distinct configuration: tasks ask for them by value and get the cached set.

use std::sync::{Arc, Mutex};

use regex::Regex;

use super::{
    Classifier, ClassifierRef, Match, contains_word, line_around, luhn_valid, mod97_valid,
};
use crate::mask;
use crate::settings::{CustomClassifierConfig, Validator};

/// Compiled patterns bigger than this are refused: a pathological pattern would
/// otherwise cost every task its memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a custom pattern the way the classifier will run it.
pub fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

pub struct Custom {
    cfg: CustomClassifierConfig,
    re: Regex,
}

impl Custom {
    pub fn new(cfg: &CustomClassifierConfig) -> Result<Self, String> {
        let re =
            compile_regex(&cfg.regex).map_err(|e| format!("classifier `{}`: {e}", cfg.name))?;
        Ok(Custom {
            cfg: cfg.clone(),
            re,
        })
    }

    fn validated(&self, value: &str) -> bool {
        match self.cfg.validator {
            None => true,
            Some(Validator::Luhn) => {
                let digits: Vec<u8> = value
                    .bytes()
                    .filter(u8::is_ascii_digit)
                    .map(|b| b - b'0')
                    .collect();
                luhn_valid(&digits)
            }
            Some(Validator::Mod97) => {
                let compact: String = value.chars().filter(char::is_ascii_alphanumeric).collect();
                mod97_valid(&compact)
            }
        }
    }
}

impl Classifier for Custom {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn mask(&self, value: &str) -> String {
        mask::secret(value)
    }

    fn scan(&self, text: &str, out: &mut Vec<Match>) {
        for m in self.re.find_iter(text) {
            let v = m.as_str();
            if v.is_empty() || self.cfg.allow_list.iter().any(|a| a == v) || !self.validated(v) {
                continue;
            }
            let line = line_around(text, m.start(), m.end());
            let context = self
                .cfg
                .context_words
                .iter()
                .any(|w| contains_word(line, w));
            out.push(Match {
                start: m.start(),
                end: m.end(),
                confidence: if context {
                    self.cfg.context_confidence
                } else {
                    self.cfg.confidence
                },
            });
        }
    }
}

type Cache = Option<(Vec<CustomClassifierConfig>, Arc<Vec<ClassifierRef>>)>;

static CACHE: Mutex<Cache> = Mutex::new(None);

/// The compiled classifiers for `cfgs`, from the cache when the configuration is the
/// one compiled last (a site's configuration does not change while it runs).
pub fn compiled(cfgs: &[CustomClassifierConfig]) -> Result<Arc<Vec<ClassifierRef>>, String> {
    if cfgs.is_empty() {
        return Ok(Arc::new(Vec::new()));
    }
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((key, set)) = cache.as_ref()
        && key.as_slice() == cfgs
    {
        return Ok(set.clone());
    }
    let set: Vec<ClassifierRef> = cfgs
        .iter()
        .map(|c| Custom::new(c).map(|c| Arc::new(c) as ClassifierRef))
        .collect::<Result<_, _>>()?;
    let set = Arc::new(set);
    *cache = Some((cfgs.to_vec(), set.clone()));
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::super::scan_one;
    use super::*;

    fn cfg(regex: &str) -> CustomClassifierConfig {
        CustomClassifierConfig {
            name: "employee_id".into(),
            regex: regex.into(),
            validator: None,
            context_words: vec!["employee".into()],
            allow_list: vec!["EMP-000000".into()],
            confidence: 0.5,
            context_confidence: 0.9,
        }
    }

    #[test]
    fn regex_context_and_allow_list() {
        let c = Custom::new(&cfg(r"\bEMP-\d{6}\b")).unwrap();
        let found = scan_one(&c, "Employee EMP-123456, test EMP-000000, other EMP-12345");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].confidence, 0.9);
        assert!(!found[0].masked.contains("123456"), "{}", found[0].masked);
        assert_eq!(scan_one(&c, "id EMP-654321")[0].confidence, 0.5);
    }

    #[test]
    fn validators_filter_matches() {
        let mut luhn = cfg(r"\b\d{16}\b");
        luhn.validator = Some(Validator::Luhn);
        let c = Custom::new(&luhn).unwrap();
        assert_eq!(scan_one(&c, "4111111111111111 4111111111111112").len(), 1);
        let mut m97 = cfg(r"\bGB\d{2}[A-Z]{4}\d{14}\b");
        m97.validator = Some(Validator::Mod97);
        let c = Custom::new(&m97).unwrap();
        assert_eq!(
            scan_one(&c, "GB82WEST12345698765432 GB83WEST12345698765432").len(),
            1
        );
    }

    #[test]
    fn a_bad_regex_is_an_error_naming_the_classifier() {
        let err = Custom::new(&cfg("EMP-(")).err().unwrap();
        assert!(err.contains("employee_id"), "{err}");
    }
}
