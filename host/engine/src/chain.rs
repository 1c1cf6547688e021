//! Layer chains: the value of every solved vertex output.
//!
//! A filesystem result is an ordered list of committed snapshot layers, bottom first; the empty
//! list is `scratch`. The solver stores results as opaque strings, so a chain has one canonical
//! string form, `chain:ID,ID,...`.

use hoist_store::snapshot::LayerId;

use crate::Error;

/// An ordered stack of committed layers, bottom first; empty means an empty filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain(pub Vec<LayerId>);

/// Prefix of the string form, so a foreign string is never mistaken for a chain.
const PREFIX: &str = "chain:";

impl Chain {
    /// The empty filesystem.
    pub fn scratch() -> Chain {
        Chain(Vec::new())
    }

    /// This chain with one more layer on top.
    pub fn with_layer(&self, layer: LayerId) -> Chain {
        let mut layers = self.0.clone();
        layers.push(layer);
        Chain(layers)
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[LayerId] {
        &self.0
    }

    /// The string the solver stores for this chain.
    pub fn encode(&self) -> String {
        let ids: Vec<&str> = self.0.iter().map(|l| l.as_str()).collect();
        format!("{PREFIX}{}", ids.join(","))
    }

    /// Parses the string form written by [`Chain::encode`].
    pub fn decode(s: &str) -> Result<Chain, Error> {
        let rest = s
            .strip_prefix(PREFIX)
            .ok_or_else(|| Error::Internal(format!("not a layer chain: {s:?}")))?;
        if rest.is_empty() {
            return Ok(Chain::scratch());
        }
        let layers = rest.split(',').map(|id| id.parse::<LayerId>()).collect::<Result<_, _>>()?;
        Ok(Chain(layers))
    }
}
