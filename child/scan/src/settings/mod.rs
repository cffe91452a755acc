//! The scanner's settings as a site's configuration carries them: data sources and
//! classifiers. The site's config crate embeds them and validates them.

mod classifiers;
mod data_sources;
mod secret;

pub use classifiers::{ClassifiersConfig, CustomClassifierConfig, Validator};
pub use data_sources::{DataSourceConfig, FilesystemSource, PostgresSource, SyntheticSource};
pub use secret::SecretString;
