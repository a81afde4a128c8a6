//! Item 7: the N_v = 2, N_h = 1 toy, where the hidden unit's angle follows a closed form; the
//! gradient-ascent trajectory against it.

use std::path::Path;

use ndarray::Array2;

use super::Out;
use crate::emit::figure::{Figure, LineChart, Panel, Series, Style};
use crate::emit::npy;
use crate::emit::table::{Table, Unit, col};
use crate::error::Result;

#[derive(Default, serde::Serialize)]
struct AngleRow {
    update: i64,
    t: f64,
    theta: f64,
    theta_closed_form: f64,
    abs_difference: f64,
    xi: f64,
}

/// Item 7: `toy_angle` from the toy stage's records (update, t, θ, θ_closed, ξ) in `dir`.
pub(super) fn toy_angle(dir: &Path, out: &Out) -> Result<()> {
    let records: Array2<f64> = npy::read(&dir.join("arrays").join("toy.angle.npy"))?;
    let rows: Vec<AngleRow> = records
        .rows()
        .into_iter()
        .map(|r| AngleRow {
            update: r[0] as i64,
            t: r[1],
            theta: r[2],
            theta_closed_form: r[3],
            abs_difference: (r[2] - r[3]).abs(),
            xi: r[4],
        })
        .collect();
    Table::from_rows("toy_angle", &["update"], &rows)?
        .describe(super::SHARED_COLUMNS)
        .describe(&[
            col("t", Unit::One, "flow time α × update"),
            col("theta", Unit::One, "the hidden unit's angle, trained (rad)"),
            col(
                "theta_closed_form",
                Unit::One,
                "θ with tan θ = tan θ₀ · exp(−σ_h²(1/κ₁ − 1/κ₂) t) (rad)",
            ),
            col(
                "abs_difference",
                Unit::One,
                "|theta − theta_closed_form| (rad)",
            ),
            col("xi", Unit::One, "ξ, the norm of the hidden unit's weights"),
        ])
        .write(&out.tables)?;
    let worst = rows.iter().map(|r| r.abs_difference).fold(0.0, f64::max);
    let points = |pick: fn(&AngleRow) -> f64| rows.iter().map(|r| (r.t, pick(r))).collect();
    Figure::grid(
        vec![
            Panel::Line(LineChart {
                title: "N_v = 2, N_h = 1: angle of the hidden unit".into(),
                x_label: "t = α · update".into(),
                y_label: "Δθ (rad)".into(),
                series: vec![
                    Series::new(
                        Some("gradient ascent".into()),
                        points(|r| r.theta),
                        0,
                        Style::Line,
                    ),
                    Series::new(
                        Some("closed form".into()),
                        points(|r| r.theta_closed_form),
                        3,
                        Style::Dashed,
                    ),
                ],
                ..Default::default()
            }),
            Panel::Line(LineChart {
                title: format!("|θ − θ(closed form)| (max {worst:.2e})"),
                x_label: "t = α · update".into(),
                y_label: "rad".into(),
                log_y: true,
                series: vec![Series::new(
                    None,
                    rows.iter()
                        .skip(1)
                        .map(|r| (r.t, r.abs_difference))
                        .collect(),
                    0,
                    Style::Line,
                )],
                ..Default::default()
            }),
        ],
        2,
        (700, 500),
    )
    .write(&out.figures, "toy_angle")
}
