//! Job, task and phase states, with their wire names and the transitions the engine allows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Generates `as_str`, `Display`, `FromStr` and `ALL` for a wire enum.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        // utoipa does not read a `rename` whose value comes from a macro argument (it
        // documented `Completed` for `COMPLETED`); every wire name is its variant's
        // name in upper snake case, which the tests below hold it to.
        #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownState { kind: stringify!($name), value: other.to_owned() }),
                }
            }
        }
    };
}

/// A state name read from the database or a request that this build does not know.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

wire_enum!(
    /// Lifecycle of a job: `PENDING → RUNNING → COMPLETED | FAILED | CANCELLED`,
    /// with `CANCELLING` while cancellation propagates.
    JobState {
        Pending => "PENDING",
        Running => "RUNNING",
        Cancelling => "CANCELLING",
        Completed => "COMPLETED",
        Failed => "FAILED",
        Cancelled => "CANCELLED",
    }
);

impl JobState {
    /// A terminal job never changes state again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }
}

wire_enum!(
    /// Lifecycle of a task: `PENDING → RUNNING → SUCCEEDED | FAILED | CANCELLED`;
    /// a retryable failure goes back to `PENDING` with a backoff.
    TaskState {
        Pending => "PENDING",
        Running => "RUNNING",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
        Cancelled => "CANCELLED",
    }
);

impl TaskState {
    /// A terminal task is never reopened.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }
}

wire_enum!(
    /// What a task does: `DISCOVERY` lists a data source's objects, `PROCESS` scans one object.
    Phase {
        Discovery => "DISCOVERY",
        Process => "PROCESS",
    }
);

wire_enum!(
    /// How far an object was scanned.
    ObjectOutcome {
        Complete => "COMPLETE",
        Partial => "PARTIAL",
        Skipped => "SKIPPED",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The values a schema documents for `T`.
    fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("no enum in {schema}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    fn wire<T: Serialize>(all: &[T]) -> Vec<String> {
        all.iter()
            .map(|s| {
                serde_json::to_value(s)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn the_openapi_schemas_document_the_wire_names() {
        assert_eq!(documented::<JobState>(), wire(JobState::ALL));
        assert_eq!(documented::<TaskState>(), wire(TaskState::ALL));
        assert_eq!(documented::<Phase>(), wire(Phase::ALL));
        assert_eq!(documented::<ObjectOutcome>(), wire(ObjectOutcome::ALL));
        for s in JobState::ALL {
            assert_eq!(wire(&[*s]), [s.as_str()]);
        }
    }

    #[test]
    fn names_round_trip_through_from_str() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), *s);
        }
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), *s);
        }
        assert!("running".parse::<JobState>().is_err());
    }

    #[test]
    fn terminal_states_are_the_documented_ones() {
        let terminal: Vec<_> = TaskState::ALL.iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [
                &TaskState::Succeeded,
                &TaskState::Failed,
                &TaskState::Cancelled
            ]
        );
        assert!(!JobState::Cancelling.is_terminal());
    }
}
