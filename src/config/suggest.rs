//! "Did you mean …?" for unknown keys and variants, from serde's own message.
use strsim::jaro_winkler;

/// Appends a suggestion to serde messages like
/// "unknown field `recurent_dropout`, expected one of `units`, …".
pub fn with_suggestion(message: &str) -> String {
    let Some(found) = backticked(message).first().cloned() else {
        return message.to_string();
    };
    if !(message.starts_with("unknown field") || message.starts_with("unknown variant")) {
        return message.to_string();
    }
    let candidates: Vec<String> = backticked(message).into_iter().skip(1).collect();
    match closest(&found, &candidates) {
        Some(best) => format!("{message}; did you mean `{best}`?"),
        None => message.to_string(),
    }
}

/// The closest candidate, if it is close enough to be a plausible typo.
pub fn closest(found: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (jaro_winkler(found, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}

fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_field() {
        let m = with_suggestion("unknown field `recurent_dropout`, expected one of `units`, `dropout`, `recurrent_dropout`");
        assert!(m.ends_with("did you mean `recurrent_dropout`?"), "{m}");
    }

    #[test]
    fn no_suggestion_when_far() {
        let m = with_suggestion("unknown field `zzz`, expected one of `units`, `dropout`");
        assert!(!m.contains("did you mean"), "{m}");
    }
}
