//! The console's files, built into the binary from `master/console/`. The page
//! (`/`) is never cached, so it always names the current version; every other
//! file is served under `/console/<version>/`, where the version is a hash of all
//! files, so it can be cached for a year and still never be stale after an upgrade.
//! Each file also carries a strong ETag.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use meridian_service::ApiError;
use sha2::{Digest, Sha256};

use super::headers::secure;

macro_rules! files {
    ($($path:literal => $mime:literal),* $(,)?) => {
        &[$(($path, $mime, include_bytes!(concat!("../../console/", $path)).as_slice())),*]
    };
}

/// (path under `master/console/`, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = files![
    "app.css" => "text/css; charset=utf-8",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/dom.js" => "text/javascript; charset=utf-8",
    "js/format.js" => "text/javascript; charset=utf-8",
    "js/live.js" => "text/javascript; charset=utf-8",
    "js/route.js" => "text/javascript; charset=utf-8",
    "js/signin.js" => "text/javascript; charset=utf-8",
    "js/sites.js" => "text/javascript; charset=utf-8",
    "js/jobs.js" => "text/javascript; charset=utf-8",
    "js/bulk.js" => "text/javascript; charset=utf-8",
    "js/job.js" => "text/javascript; charset=utf-8",
    "js/findings.js" => "text/javascript; charset=utf-8",
    "js/compare.js" => "text/javascript; charset=utf-8",
    "js/newjob.js" => "text/javascript; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
];

const INDEX: &str = include_str!("../../console/index.html");

struct Built {
    version: String,
    index: String,
    etags: Vec<String>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut all = Sha256::new();
        let etags = FILES
            .iter()
            .map(|(path, _, bytes)| {
                all.update(path.as_bytes());
                all.update(bytes);
                format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..32])
            })
            .collect();
        all.update(INDEX.as_bytes());
        let version = hex::encode(all.finalize())[..16].to_owned();
        Built {
            index: INDEX.replace("__VERSION__", &version),
            version,
            etags,
        }
    })
}

/// `GET /`: the page. `no-store`: it names the assets' version and nothing else.
pub async fn index() -> Response {
    let mut resp = built().index.clone().into_response();
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(&mut resp);
    resp
}

/// `GET /console/<version>/<path>`: a file of the current version (404 for another
/// version: a page that old must be reloaded, not mixed with newer files).
pub async fn asset(
    Path((v, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let b = built();
    let found = FILES.iter().position(|(p, _, _)| *p == path);
    let (Some(i), true) = (found, v == b.version) else {
        return Err(ApiError::NotFound(format!(
            "no console file {path} in version {v}"
        )));
    };
    let (_, mime, bytes) = FILES[i];
    let etag = &b.etags[i];
    let mut resp = if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = bytes.into_response();
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(mime));
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(ETAG, v);
    }
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    secure(&mut resp);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_current_version_and_no_inline_code() {
        let b = built();
        assert!(
            b.index
                .contains(&format!("/console/{}/js/app.js", b.version))
        );
        assert!(!b.index.contains("__VERSION__"));
        // The CSP forbids inline script and style; the page must not need them.
        assert!(!b.index.contains("style="));
        assert!(!b.index.contains("<style"));
        assert!(!b.index.contains("onclick"));
        assert!(!b.index.contains("<script>"));
    }

    #[test]
    fn no_file_sets_an_inline_style_attribute_or_evaluates_strings() {
        for (path, _, bytes) in FILES {
            let text = String::from_utf8_lossy(bytes);
            for banned in ["innerHTML", "eval(", "new Function", "setAttribute('style'"] {
                assert!(!text.contains(banned), "{path} uses {banned}");
            }
        }
    }
}
