//! v1 devices controller: OCI `linux.resources.devices` rules, applied in
//! order to `devices.allow` / `devices.deny`.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::cgroups::common::write_file;
use crate::cgroups::Result;

/// The kernel's rule syntax: `type major:minor access`, `*` for any.
pub(crate) fn rule_line(rule: &LinuxDeviceCgroup) -> String {
    let typ = rule.typ().unwrap_or(LinuxDeviceType::A);
    let num = |n: Option<i64>| {
        n.filter(|v| *v >= 0)
            .map_or("*".to_string(), |v| v.to_string())
    };
    let access = rule
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    if typ == LinuxDeviceType::A {
        return format!("a *:* {access}");
    }
    format!(
        "{} {}:{} {}",
        typ.as_str(),
        num(rule.major()),
        num(rule.minor()),
        access
    )
}

pub(super) fn set(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for rule in rules {
        let file = if rule.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(&dir.join(file), &rule_line(rule))?;
    }
    Ok(())
}
