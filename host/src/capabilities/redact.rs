//! The secret redactor and the one-line printing guard: what keeps a secret, or a flow's
//! control characters, out of what operators read.

use std::sync::Mutex;

/// Replaces every secret the host knows (admin token, client secrets, `.env` secrets a flow
/// routed, captured credentials) with `***` in text that leaves the host: logs, events, errors,
/// findings, and the answers a flow reads.
///
/// A run of a thousand services knows a thousand secrets, and text is redacted many times per
/// service: secrets are indexed by their first bytes, so redacting costs one lookup per byte of
/// the text, whatever the number of secrets. Secrets shorter than the index key (a four-digit
/// PIN is still a secret) are kept apart and looked for at every byte.
#[derive(Default)]
pub struct Redactor {
    secrets: Mutex<Secrets>,
}

#[derive(Default)]
struct Secrets {
    by_prefix: std::collections::HashMap<[u8; SECRET_PREFIX], Vec<String>>,
    /// Shorter than `SECRET_PREFIX`, longest first.
    short: Vec<String>,
}

/// Bytes of a secret's index key.
const SECRET_PREFIX: usize = 8;

impl Redactor {
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = self.secrets.lock().expect("redactor");
        let same = match secret.as_bytes().first_chunk::<SECRET_PREFIX>() {
            Some(prefix) => secrets.by_prefix.entry(*prefix).or_default(),
            None => &mut secrets.short,
        };
        if !same.iter().any(|x| x == secret) {
            same.push(secret.to_string());
            // Longest first: a secret that extends another is replaced whole.
            same.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        self.replace_with(text, "***")
    }

    /// Replaces every known secret in `text` with `placeholder`.
    pub fn replace_with(&self, text: &str, placeholder: &str) -> String {
        let secrets = self.secrets.lock().expect("redactor");
        if secrets.by_prefix.is_empty() && secrets.short.is_empty() {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut copied, mut at) = (0, 0);
        while at < bytes.len() {
            let rest = &bytes[at..];
            let long = rest
                .get(..SECRET_PREFIX)
                .and_then(|window| secrets.by_prefix.get(window))
                .and_then(|same| same.iter().find(|s| rest.starts_with(s.as_bytes())));
            let found = long.or_else(|| secrets.short.iter().find(|s| rest.starts_with(s.as_bytes())));
            match found {
                // A match starts where a secret (valid UTF-8) starts: a character boundary.
                Some(secret) if text.is_char_boundary(at) => {
                    out.push_str(&text[copied..at]);
                    out.push_str(placeholder);
                    at += secret.len();
                    copied = at;
                }
                _ => at += 1,
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// Text from a flow (or a service's answer) made safe to print on one line of the operator's
/// terminal or CI log: control characters (escape sequences, carriage returns, line breaks),
/// Unicode line separators and bidirectional overrides become spaces, so nothing a flow says can
/// recolour the screen, rewrite a line or start one of its own (a forged `✓ other-service`).
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            let invisible = c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c);
            if invisible { ' ' } else { c }
        })
        .collect()
}

#[cfg(test)]
mod redactor_tests {
    use super::Redactor;

    #[test]
    fn every_known_secret_is_replaced_wherever_it_appears() {
        let r = Redactor::default();
        r.add("pin7"); // shorter than the index key: still a secret
        r.add("tok-0123456789");
        r.add("tok-0123456789-longer");
        r.add("ünïcødé-secret-value");
        for i in 0..1000 {
            r.add(&format!("client-secret-{i:04}-abcdefgh"));
        }
        assert_eq!(
            r.redact("a tok-0123456789-longer and tok-0123456789, short pin7"),
            "a *** and ***, short ***"
        );
        assert_eq!(r.redact("pin7pin7 ü pin"), "****** ü pin");
        assert_eq!(
            r.redact("x=client-secret-0999-abcdefghy=client-secret-0001-abcdefgh"),
            "x=***y=***"
        );
        assert_eq!(r.redact("ü ünïcødé-secret-value ü"), "ü *** ü");
        assert_eq!(r.redact("client-secret-0999-abcdefg"), "client-secret-0999-abcdefg");
        assert_eq!(r.redact(""), "");
    }

    #[test]
    fn printable_text_stays_on_its_line() {
        assert_eq!(
            super::printable("ok\r✓ grafana\n\u{1b}[32mgreen\u{2028}x\u{202e}y\u{85}z\t"),
            "ok ✓ grafana  [32mgreen x y z "
        );
    }
}
