//! Device groups: a name for the devices whose twins match a query condition, so a
//! group follows the fleet (a device tagged `site = plant-7` joins `plant-7` the moment
//! its tag is set) instead of being a list someone keeps by hand.

use serde::Serialize;
use serde_json::Value;
use store::Group;

use super::{now_ms, store_error, Hub, HubError, Page};
use crate::twin::rfc3339;

/// What a group condition is parsed inside of; error positions are reported relative
/// to the condition itself.
const PREFIX: &str = "SELECT deviceId, status, connectionState FROM devices WHERE ";

/// A group as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    /// Group name.
    pub name: String,
    /// The query condition devices must match.
    pub condition: String,
    /// When it was defined (RFC 3339).
    pub created_time: String,
}

impl Hub {
    /// Defines (or redefines) a group; the condition is checked now, not at first use.
    pub async fn put_group(&self, name: &str, condition: &str) -> Result<GroupInfo, HubError> {
        super::registry::validate_id(name).map_err(|_| {
            HubError::Invalid(format!(
                "group name {name:?} is not a valid name (same rules as device ids)"
            ))
        })?;
        parse_condition(condition)?;
        let group = Group {
            name: name.to_string(),
            condition: condition.to_string(),
            created_ms: now_ms(),
        };
        let stored = group.clone();
        self.blocking(move |s| s.put_group(&stored))
            .await
            .map_err(|e| store_error(name, e))?;
        Ok(info(group))
    }

    /// One group.
    pub async fn group(&self, name: &str) -> Result<GroupInfo, HubError> {
        let owned = name.to_string();
        self.blocking(move |s| s.group(&owned))
            .await
            .map(info)
            .map_err(|e| group_error(name, e))
    }

    /// Every group.
    pub async fn groups(&self) -> Result<Vec<GroupInfo>, HubError> {
        self.blocking(|s| s.groups())
            .await
            .map(|groups| groups.into_iter().map(info).collect())
            .map_err(|e| store_error("", e))
    }

    /// Removes a group (its devices are untouched).
    pub async fn delete_group(&self, name: &str) -> Result<(), HubError> {
        let owned = name.to_string();
        self.blocking(move |s| s.delete_group(&owned))
            .await
            .map_err(|e| group_error(name, e))
    }

    /// The group's current members (`deviceId`, `status`, `connectionState`).
    pub async fn group_devices(
        &self,
        name: &str,
        after: Option<String>,
        limit: usize,
    ) -> Result<Page<Value>, HubError> {
        let group = self.group(name).await?;
        self.query(&format!("{PREFIX}{}", group.condition), after, limit)
            .await
    }
}

/// Parses a condition the way it will run, with error positions inside the condition.
fn parse_condition(condition: &str) -> Result<(), HubError> {
    crate::query::parse(&format!("{PREFIX}{condition}"))
        .map(|_| ())
        .map_err(|e| {
            let at = e.position.saturating_sub(PREFIX.len());
            HubError::Invalid(format!("group condition, at {at}: {}", e.message))
        })
}

fn group_error(name: &str, e: store::StoreError) -> HubError {
    match e {
        store::StoreError::NotFound => HubError::NotFound(format!("group {name}")),
        other => store_error(name, other),
    }
}

fn info(group: Group) -> GroupInfo {
    GroupInfo {
        name: group.name,
        condition: group.condition,
        created_time: rfc3339(group.created_ms),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_condition;

    #[test]
    fn condition_errors_point_into_the_condition() {
        assert!(parse_condition("tags.site = 'plant-7' AND status = 'enabled'").is_ok());
        let err = parse_condition("tags.site = ").unwrap_err().to_string();
        assert!(err.contains("at 12"), "{err}");
    }
}
