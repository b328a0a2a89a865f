//! The JSON API under `/api/v1` (docs/dashboard.md). Every route needs a
//! login token (401 without one) and checks on the server that the token's
//! scope covers the organisation asked for (403 otherwise).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{debug, warn};

use crate::access::Scope;
use crate::db::{self, OrgInfo, Rank};
use crate::node::{Level, Node};
use crate::{AppState, Error};

type Shared = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/nodes/{level}/{code}", get(node))
        .route("/api/v1/nodes/{level}/{code}/summary", get(summary))
        .route("/api/v1/nodes/{level}/{code}/children", get(children))
        .route("/api/v1/nodes/{level}/{code}/series", get(series))
        .route("/api/v1/nodes/{level}/{code}/practices", get(practices))
        .route("/api/v1/nodes/{level}/{code}/alerts", get(alerts))
        .route("/api/v1/nodes/{level}/{code}/heatmap", get(heat_map))
        .route("/api/{*rest}", get(unknown))
        // Figures change every few seconds and belong to one login: never cached
        // by the browser or a proxy.
        .layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            },
        ))
}

async fn unknown() -> Error {
    Error::NotFound("no such API route; see docs/dashboard.md".into())
}

/// The holder of a valid login token.
pub struct User {
    pub name: String,
    pub scope: Scope,
}

impl FromRequestParts<Arc<AppState>> for User {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<User, Error> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Error::Unauthorized)?;
        let token = state.tokens.find(secret).ok_or_else(|| {
            warn!(path = %parts.uri.path(), "unknown login token");
            Error::Unauthorized
        })?;
        Ok(User {
            name: token.name.clone(),
            scope: token.scope.clone(),
        })
    }
}

/// A London day as `YYYY-MM-DD`, within what a ClickHouse Date holds.
pub fn parse_day(text: &str) -> Result<String, Error> {
    let bad = || Error::BadRequest(format!("day `{text}` is not a date (YYYY-MM-DD)"));
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
    let first = NaiveDate::from_ymd_opt(1970, 1, 8).expect("a date");
    let last = NaiveDate::from_ymd_opt(2105, 12, 30).expect("a date");
    if date < first || date > last {
        return Err(bad());
    }
    Ok(date.format("%Y-%m-%d").to_string())
}

fn days_before(day: &str, days: i64) -> String {
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("checked by parse_day");
    (date - chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// The asked-for day, else the configured one, else the latest with metrics, else today.
async fn resolve_day(state: &AppState, asked: Option<&str>) -> Result<String, Error> {
    if let Some(day) = asked.filter(|d| !d.is_empty()) {
        return parse_day(day);
    }
    if let Some(day) = &state.fixed_day {
        return Ok(day.clone());
    }
    let latest = state
        .cache
        .get_or("latest_day".into(), || async {
            Ok(json!(db::latest_day(&state.client).await?))
        })
        .await?;
    Ok(match latest.as_str() {
        Some(day) => day.to_string(),
        None => chrono::Utc::now()
            .with_timezone(&chrono_tz::Europe::London)
            .format("%Y-%m-%d")
            .to_string(),
    })
}

/// The node of the URL if the user may see it, with what `organisations` says of it.
async fn authorize(
    state: &AppState,
    user: &User,
    level: &str,
    code: &str,
) -> Result<(Node, OrgInfo), Error> {
    let node = Node::parse(level, code)?;
    let denied = || {
        warn!(user = %user.name, level = node.level.as_str(), code = %node.code, "access denied");
        Error::Forbidden
    };
    // Decided before any query where the level alone decides.
    if let Scope::Icb(icb) = &user.scope {
        match node.level {
            Level::England | Level::Region => return Err(denied()),
            Level::Icb if node.code != *icb => return Err(denied()),
            _ => {}
        }
    }
    let key = format!("org:{}:{}", node.level.as_str(), node.code);
    let info = state
        .cache
        .get_or(key, || async {
            Ok(
                serde_json::to_value(db::org_info(&state.client, &node).await?)
                    .expect("serialisable"),
            )
        })
        .await?;
    let info: Option<OrgInfo> = serde_json::from_value(info).expect("as serialised");
    match (&user.scope, info) {
        (Scope::England, Some(info)) => Ok((node, info)),
        (Scope::Icb(icb), Some(info))
            if !info.icbs.is_empty() && info.icbs.iter().all(|i| i == icb) =>
        {
            Ok((node, info))
        }
        // Outside the user's ICB, known or not: the answer must not tell which.
        (Scope::Icb(_), _) => Err(denied()),
        (Scope::England, None) => Err(Error::NotFound(format!(
            "no {} {} in organisations",
            node.level.as_str(),
            node.code
        ))),
    }
}

fn node_json(node: &Node, info: &OrgInfo) -> Value {
    json!({ "level": node.level, "code": node.code, "name": info.name })
}

/// Percentile bounds in seconds: a number, "inf" above an hour, null for none.
fn seconds(value: Option<f64>) -> Value {
    match value {
        Some(v) if v.is_infinite() => json!("inf"),
        Some(v) => json!(v),
        None => Value::Null,
    }
}

fn may_see(scope: &Scope, level: Level) -> bool {
    matches!(scope, Scope::England) || !matches!(level, Level::England | Level::Region)
}

#[derive(Deserialize)]
struct DayQuery {
    day: Option<String>,
}

async fn me(State(state): Shared, user: User) -> Result<Json<Value>, Error> {
    let day = resolve_day(&state, None).await?;
    let root = user.scope.root();
    let (scope, icb) = match &user.scope {
        Scope::England => ("england", None),
        Scope::Icb(icb) => ("icb", Some(icb.clone())),
    };
    Ok(Json(json!({
        "user": user.name,
        "scope": scope,
        "icb": icb,
        "root": root,
        "day": day,
        "refresh_seconds": state.refresh_seconds,
    })))
}

async fn node(
    State(state): Shared,
    user: User,
    Path((level, code)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    let (node, info) = authorize(&state, &user, &level, &code).await?;
    let mut path = vec![json!({ "level": "england", "code": "ENG", "name": "England" })];
    let mut push = |level: Level, code: &str, name: &str| {
        if !code.is_empty() {
            path.push(json!({ "level": level, "code": code, "name": name }));
        }
    };
    if node.level != Level::England {
        push(Level::Region, &info.region_code, &info.region_name);
    }
    if matches!(node.level, Level::Icb | Level::Pcn | Level::Practice) {
        push(
            Level::Icb,
            info.icbs.first().map(String::as_str).unwrap_or(""),
            &info.icb_name,
        );
    }
    if node.level == Level::Practice {
        push(Level::Pcn, &info.pcn_code, &info.pcn_name);
    }
    let path: Vec<Value> = path
        .into_iter()
        .filter(|p| p["level"] != json!(node.level))
        .map(|mut p| {
            let level =
                Level::parse(p["level"].as_str().unwrap_or_default()).unwrap_or(Level::Practice);
            p["allowed"] = json!(may_see(&user.scope, level));
            p
        })
        .collect();
    let practices = if node.level == Level::England {
        Value::Null
    } else {
        json!(info.practices)
    };
    Ok(Json(json!({
        "level": node.level,
        "code": node.code,
        "name": info.name,
        "practices": practices,
        "child_level": node.level.child(),
        "path": path,
    })))
}

async fn summary(
    State(state): Shared,
    user: User,
    Path((level, code)): Path<(String, String)>,
    Query(query): Query<DayQuery>,
) -> Result<Json<Value>, Error> {
    let (node, info) = authorize(&state, &user, &level, &code).await?;
    let day = resolve_day(&state, query.day.as_deref()).await?;
    debug!(user = %user.name, level = node.level.as_str(), code = %node.code, %day, "summary");
    let key = format!("summary:{}:{}:{day}", node.level.as_str(), node.code);
    let value = state
        .cache
        .get_or(key, || async {
            let f = db::day_figures(&state.client, &node, &day).await?;
            let england = db::day_figures(&state.client, &Node::england(), &day).await?;
            Ok(json!({
                "node": node_json(&node, &info),
                "day": day,
                "practices_with_calls": f.practices,
                "provisional_windows": f.provisional_windows,
                "calls": {
                    "offered": f.offered,
                    "answered": f.answered,
                    "callback_requested": f.callback_requested,
                    "abandoned": f.abandoned,
                    "missed": f.missed,
                },
                "rates_pct": {
                    "answered": f.answered_pct,
                    "abandoned": f.abandoned_pct,
                    "handled": f.handled_pct,
                },
                // National rates only (no other organisation's figures), so
                // every login may compare itself with England.
                "england_rates_pct": {
                    "answered": england.answered_pct,
                    "abandoned": england.abandoned_pct,
                    "handled": england.handled_pct,
                },
                "wait_s": {
                    "answered_with_wait": f.wait_count,
                    "mean": f.mean_wait_s,
                    "p50": seconds(f.p50_wait_s),
                    "p90": seconds(f.p90_wait_s),
                    "max": if f.wait_count == 0 { Value::Null } else { json!(f.wait_ms_max as f64 / 1000.0) },
                },
                "diverted_111": {
                    "core_hours": f.diverted_111_core,
                    "all": f.diverted_111,
                },
            }))
        })
        .await?;
    Ok(Json(value))
}

async fn children(
    State(state): Shared,
    user: User,
    Path((level, code)): Path<(String, String)>,
    Query(query): Query<DayQuery>,
) -> Result<Json<Value>, Error> {
    let (node, info) = authorize(&state, &user, &level, &code).await?;
    let day = resolve_day(&state, query.day.as_deref()).await?;
    let Some(child) = node.level.child() else {
        return Ok(Json(
            json!({ "node": node_json(&node, &info), "day": day, "child_level": null, "children": [] }),
        ));
    };
    let key = format!("children:{}:{}:{day}", node.level.as_str(), node.code);
    let value = state
        .cache
        .get_or(key, || async {
            let rows = db::children(&state.client, &node, child, &day).await?;
            let children: Vec<Value> = rows
                .into_iter()
                .map(|c| {
                    json!({
                        "level": child,
                        "code": c.code,
                        "name": c.name,
                        "offered": c.offered,
                        "answered_pct": c.answered_pct,
                        "abandoned_pct": c.abandoned_pct,
                        "p90_wait_s": seconds(c.p90_wait_s),
                        "diverted_111_core": c.diverted_111_core,
                    })
                })
                .collect();
            Ok(json!({ "node": node_json(&node, &info), "day": day, "child_level": child, "children": children }))
        })
        .await?;
    Ok(Json(value))
}

async fn series(
    State(state): Shared,
    user: User,
    Path((level, code)): Path<(String, String)>,
    Query(query): Query<DayQuery>,
) -> Result<Json<Value>, Error> {
    let (node, info) = authorize(&state, &user, &level, &code).await?;
    let day = resolve_day(&state, query.day.as_deref()).await?;
    let last_week = days_before(&day, 7);
    let key = format!("series:{}:{}:{day}", node.level.as_str(), node.code);
    let value = state
        .cache
        .get_or(key, || async {
            let points = db::series(&state.client, &node, &day).await?;
            let of = |wanted: &str| -> Vec<Value> {
                points
                    .iter()
                    .filter(|p| p.day == wanted)
                    .map(|p| {
                        json!({
                            "minute": p.minute,
                            "time": format!("{:02}:{:02}", p.minute / 60, p.minute % 60),
                            "offered": p.offered,
                            "answered": p.answered,
                            "callback_requested": p.callback_requested,
                            "abandoned": p.abandoned,
                            "missed": p.missed,
                            "diverted_111_core": p.diverted_111_core,
                        })
                    })
                    .collect()
            };
            Ok(json!({
                "node": node_json(&node, &info),
                "day": day,
                "last_week_day": last_week,
                "step_minutes": 15,
                "today": of(&day),
                "last_week": of(&last_week),
            }))
        })
        .await?;
    Ok(Json(value))
}

#[derive(Deserialize)]
struct PracticesQuery {
    day: Option<String>,
    rank: Option<String>,
    limit: Option<u32>,
}

async fn practices(
    State(state): Shared,
    user: User,
    Path((level, code)): Path<(String, String)>,
    Query(query): Query<PracticesQuery>,
) -> Result<Json<Value>, Error> {
    let (node, info) = authorize(&state, &user, &level, &code).await?;
    let day = resolve_day(&state, query.day.as_deref()).await?;
    let (rank, rank_name) = match query.rank.as_deref().unwrap_or("abandoned_pct") {
        "abandoned_pct" => (Rank::AbandonedPct, "abandoned_pct"),
        "p90_wait" => (Rank::P90Wait, "p90_wait"),
        other => {
            return Err(Error::BadRequest(format!(
                "rank `{other}` is not abandoned_pct or p90_wait"
            )))
        }
    };
    let limit = query.limit.unwrap_or(20).clamp(1, 200);
    let key = format!(
        "practices:{}:{}:{day}:{rank_name}:{limit}",
        node.level.as_str(),
        node.code
    );
    let value = state
        .cache
        .get_or(key, || async {
            let rows = db::ranked_practices(&state.client, &node, &day, rank, limit).await?;
            let practices: Vec<Value> = rows
                .into_iter()
                .map(|p| {
                    json!({
                        "code": p.code,
                        "name": p.name,
                        "icb": p.icb,
                        "offered": p.offered,
                        "answered_pct": p.answered_pct,
                        "abandoned_pct": p.abandoned_pct,
                        "p90_wait_s": seconds(p.p90_wait_s),
                        "mean_wait_s": p.mean_wait_s,
                        "diverted_111_core": p.diverted_111_core,
                    })
                })
                .collect();
            Ok(json!({ "node": node_json(&node, &info), "day": day, "rank": rank_name, "practices": practices }))
        })
        .await?;
    Ok(Json(value))
}

async fn alerts(
    State(state): Shared,
    user: User,
    Path((level, code)): Path<(String, String)>,
) -> Result<Json<Value>, Error> {
    let (node, info) = authorize(&state, &user, &level, &code).await?;
    let key = format!("alerts:{}:{}", node.level.as_str(), node.code);
    let value = state
        .cache
        .get_or(key, || async {
            let rows = db::active_alerts(&state.client, &node).await?;
            let alerts: Vec<Value> = rows
                .into_iter()
                .map(|a| {
                    json!({
                        "id": a.id,
                        "kind": a.kind,
                        "state": a.state,
                        "practice": a.practice,
                        "practice_name": a.practice_name,
                        "summary": a.summary,
                        "started_at_ms": a.started_at_ms,
                        "updated_at_ms": a.updated_at_ms,
                        "diverted_calls": a.diverted_calls,
                        "delivered_to": a.delivered_to,
                        "failed_for": a.failed_for,
                    })
                })
                .collect();
            Ok(json!({ "node": node_json(&node, &info), "alerts": alerts }))
        })
        .await?;
    Ok(Json(value))
}

#[derive(Deserialize)]
struct HeatMapQuery {
    day: Option<String>,
    weeks: Option<u32>,
}

async fn heat_map(
    State(state): Shared,
    user: User,
    Path((level, code)): Path<(String, String)>,
    Query(query): Query<HeatMapQuery>,
) -> Result<Json<Value>, Error> {
    let (node, info) = authorize(&state, &user, &level, &code).await?;
    let day = resolve_day(&state, query.day.as_deref()).await?;
    let weeks = query.weeks.unwrap_or(4).clamp(1, 12);
    let key = format!(
        "heatmap:{}:{}:{day}:{weeks}",
        node.level.as_str(),
        node.code
    );
    let value = state
        .cache
        .get_or(key, || async {
            let rows = db::heat_map(&state.client, &node, &day, weeks).await?;
            let cells: Vec<Value> = rows
                .into_iter()
                .map(|c| {
                    let mean = if c.days == 0 {
                        0.0
                    } else {
                        c.offered as f64 / c.days as f64
                    };
                    let answered_pct =
                        (c.offered > 0).then(|| 100.0 * c.answered as f64 / c.offered as f64);
                    json!({
                        "weekday": c.weekday,
                        "hour": c.hour,
                        "offered": c.offered,
                        "answered": c.answered,
                        "abandoned": c.abandoned,
                        "days": c.days,
                        "mean_offered": mean,
                        "answered_pct": answered_pct,
                    })
                })
                .collect();
            Ok(json!({
                "node": node_json(&node, &info),
                "first_day": days_before(&day, i64::from(weeks) * 7 - 1),
                "last_day": day,
                "weeks": weeks,
                "cells": cells,
            }))
        })
        .await?;
    Ok(Json(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_checked() {
        assert_eq!(parse_day("2026-11-23").unwrap(), "2026-11-23");
        assert!(parse_day("2026-11-31").is_err());
        assert!(parse_day("2026-11-23' OR 1").is_err());
        assert!(parse_day("1969-12-31").is_err());
        assert_eq!(days_before("2026-11-23", 7), "2026-11-16");
    }

    #[test]
    fn percentile_bounds_as_json() {
        assert_eq!(seconds(Some(f64::INFINITY)), json!("inf"));
        assert_eq!(seconds(Some(120.0)), json!(120.0));
        assert_eq!(seconds(None), Value::Null);
    }
}
