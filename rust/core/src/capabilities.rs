//! Capability sets of the container process.
//!
//! Order of application (runc's `finalizeNamespace`): the bounding set is
//! dropped while still root (needs CAP_SETPCAP), PR_SET_KEEPCAPS keeps the
//! permitted set across the uid change, then effective, permitted,
//! inheritable and ambient are set to exactly the configured sets.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("capabilities: unknown capability {0:?}")]
    Unknown(String),
    #[error("capabilities: {step} {set}: {source}")]
    Set {
        step: &'static str,
        set: &'static str,
        #[source]
        source: caps::errors::CapsError,
    },
}

pub type Result<T> = std::result::Result<T, CapabilityError>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// Parse one name; accepts `CAP_SYS_ADMIN`, `SYS_ADMIN`, any case.
pub fn parse_name(name: &str) -> Result<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    Capability::from_str(&full).map_err(|_| CapabilityError::Unknown(name.to_owned()))
}

fn set_from<I: IntoIterator<Item = String>>(names: I) -> Result<CapsHashSet> {
    names.into_iter().map(|n| parse_name(&n)).collect()
}

impl CapabilityPlan {
    pub fn from_oci(c: &LinuxCapabilities) -> Result<Self> {
        // oci-spec's Display is the name without the CAP_ prefix.
        let names = |s: &Option<oci_spec::runtime::Capabilities>| -> Result<CapsHashSet> {
            set_from(s.iter().flatten().map(|c| c.to_string()))
        };
        Ok(CapabilityPlan {
            bounding: names(c.bounding())?,
            effective: names(c.effective())?,
            permitted: names(c.permitted())?,
            inheritable: names(c.inheritable())?,
            ambient: names(c.ambient())?,
        })
    }

    /// Drop every capability not in the bounding set (while still privileged).
    pub fn drop_bounding(&self) -> Result<()> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(|source| CapabilityError::Set {
                    step: "drop",
                    set: "bounding",
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Set effective, permitted, inheritable and ambient. Effective goes
    /// first while permitted is still wide, so it never exceeds permitted.
    pub fn apply(&self) -> Result<()> {
        let set = |set: CapSet, name: &'static str, value: &CapsHashSet| {
            caps::set(None, set, value).map_err(|source| CapabilityError::Set {
                step: "set",
                set: name,
                source,
            })
        };
        set(CapSet::Effective, "effective", &self.effective)?;
        set(CapSet::Permitted, "permitted", &self.permitted)?;
        set(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        // A cap can only be ambient if it is also permitted and inheritable;
        // configs often list ambient caps without inheritable ones (`runc
        // spec` does), and runc only warns then. So raise what the kernel
        // allows, one by one, and skip the rest.
        caps::clear(None, CapSet::Ambient).map_err(|source| CapabilityError::Set {
            step: "clear",
            set: "ambient",
            source,
        })?;
        for cap in &self.ambient {
            let _ = caps::raise(None, CapSet::Ambient, *cap);
        }
        Ok(())
    }
}

/// The capability mask as printed in /proc/PID/status (CapEff etc.).
pub fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0u64, |m, c| m | c.bitmask())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(
            parse_name("CAP_SYS_ADMIN").unwrap(),
            Capability::CAP_SYS_ADMIN
        );
        assert_eq!(parse_name("net_raw").unwrap(), Capability::CAP_NET_RAW);
        assert!(matches!(
            parse_name("CAP_FLY"),
            Err(CapabilityError::Unknown(_))
        ));
    }

    #[test]
    fn from_oci_config() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_KILL","CAP_NET_BIND_SERVICE"],
                "effective":["CAP_CHOWN","CAP_KILL"],"permitted":["CAP_CHOWN","CAP_KILL"]}"#,
        )
        .unwrap();
        let p = CapabilityPlan::from_oci(&c).unwrap();
        assert_eq!(p.bounding.len(), 3);
        assert!(p.effective.contains(&Capability::CAP_KILL));
        assert!(p.inheritable.is_empty() && p.ambient.is_empty());
        // CAP_CHOWN is bit 0, CAP_KILL bit 5.
        assert_eq!(mask(&p.effective), 0x21);
    }
}
