//! Test failpoints: named places that can be told to fail, so that tests can prove
//! the supervisor restarts a loop and the job still completes. Inactive (an empty
//! map) unless `MERIDIAN_FAILPOINTS` (the site), `MERIDIAN_MASTER_FAILPOINTS` (the
//! master), `SiteOptions::failpoints` or [`Failpoints::arm`] sets them.

use std::collections::HashMap;
use std::sync::Mutex;

/// What a triggered failpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Panic,
    Error,
}

#[derive(Debug, Default)]
pub struct Failpoints {
    remaining: Mutex<HashMap<String, (Action, u32)>>,
}

impl Failpoints {
    /// Parses `name=panic*3,other=error*1` (the count defaults to 1).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rest) = part
                .split_once('=')
                .ok_or_else(|| format!("failpoint `{part}` lacks `=`"))?;
            let (action, count) = rest.split_once('*').unwrap_or((rest, "1"));
            let action = match action {
                "panic" => Action::Panic,
                "error" => Action::Error,
                other => {
                    return Err(format!(
                        "failpoint action `{other}` is unknown; allowed: panic, error"
                    ));
                }
            };
            let count = count
                .parse()
                .map_err(|_| format!("failpoint count `{count}` is not a number"))?;
            map.insert(name.to_owned(), (action, count));
        }
        Ok(Failpoints {
            remaining: Mutex::new(map),
        })
    }

    /// Arms `name` for `count` more triggers while running, so a test can fail a loop
    /// that is already healthy and watch it come back.
    pub fn arm(&self, name: &str, action: Action, count: u32) {
        let mut map = self.remaining.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(name.to_owned(), (action, count));
    }

    /// Takes one trigger of `name`, if any is left.
    pub fn hit(&self, name: &str) -> Option<Action> {
        let mut map = self.remaining.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get_mut(name)?;
        if entry.1 == 0 {
            return None;
        }
        entry.1 -= 1;
        Some(entry.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_count_down() {
        let f = Failpoints::parse("pipeliner=panic*2, reaper=error").unwrap();
        assert_eq!(f.hit("pipeliner"), Some(Action::Panic));
        assert_eq!(f.hit("pipeliner"), Some(Action::Panic));
        assert_eq!(f.hit("pipeliner"), None);
        assert_eq!(f.hit("reaper"), Some(Action::Error));
        assert_eq!(f.hit("assigner"), None);
        assert!(Failpoints::parse("x=explode").is_err());
        f.arm("reaper", Action::Panic, 1);
        assert_eq!(f.hit("reaper"), Some(Action::Panic));
        assert_eq!(f.hit("reaper"), None);
    }
}
