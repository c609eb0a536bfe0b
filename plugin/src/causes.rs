//! An error and its causes on one line, `a: b: c` — for errors of crates
//! whose `Display` shows only the top (aya, kube): the log and the CNI error
//! message need the errno or the HTTP failure underneath.

use std::error::Error as StdError;
use std::fmt;

/// Displays the error, then each cause whose text the line does not hold
/// already (several aya and kube errors print their source themselves).
pub struct Causes<'a>(pub &'a dyn StdError);

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            cause = c.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for E {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn causes_are_joined_once() {
        let e = E(
            "attach: EBUSY",
            Some(Box::new(E("EBUSY", Some(Box::new(E("device busy", None)))))),
        );
        assert_eq!(Causes(&e).to_string(), "attach: EBUSY: device busy");
    }
}
