//! Figures with plotters, each written as PNG and SVG from one description.
//!
//! A [`Figure`] is data only — line charts (with dashed reference lines, markers and error
//! bars), heat-map panels and histograms, arranged in a grid — so the experiment code says *what*
//! to draw and this module alone knows *how*. Logarithmic axes are drawn by plotting log10 of the
//! values and labelling the ticks with the values themselves. Text uses the bundled DejaVu Sans, so PNGs need no system fonts.

use std::path::Path;
use std::sync::OnceLock;

use ndarray::Array2;
use plotters::chart::SeriesAnno;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use text::{CrispText, typeset};

mod text;

pub(super) const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour index of black, for what every series is compared with (a target, a
/// prediction shared by all): the other indices cycle through a ten-colour palette.
pub const BLACK_INK: usize = usize::MAX;

fn colour(index: usize) -> RGBColor {
    if index == BLACK_INK {
        BLACK
    } else {
        PALETTE[index % PALETTE.len()]
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    Line,
    Dashed,
    Markers,
    LineMarkers,
    DashedMarkers,
}

/// One series of a line chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: Option<String>,
    pub points: Vec<(f64, f64)>,
    /// Symmetric error bars on y, one per point.
    pub errors: Option<Vec<f64>>,
    pub color: usize,
    pub style: Style,
}

impl Series {
    pub fn new(name: Option<String>, points: Vec<(f64, f64)>, color: usize, style: Style) -> Self {
        Self {
            name,
            points,
            errors: None,
            color,
            style,
        }
    }

    /// A horizontal dashed reference line at `y` over `[x0, x1]`.
    pub fn hline(name: Option<String>, y: f64, x0: f64, x1: f64, color: usize) -> Self {
        Self::new(name, vec![(x0, y), (x1, y)], color, Style::Dashed)
    }
}

/// A line/scatter chart.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Leaves the names to the figure's shared legend ([`Figure::with_legend`]).
    pub hide_legend: bool,
}

/// A heat map of a matrix, row 0 at the top, on a diverging colour scale symmetric about zero
/// with a colour bar.
#[derive(Clone, Debug, Default)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub values: Array2<f64>,
    /// The colour bar's limit: values at ±`limit` take the full colours. `None` scales the
    /// panel to its own largest |value|; panels compared by eye should share one limit.
    pub limit: Option<f64>,
}

impl Heatmap {
    /// The largest |value|: the limit that fits every panel in `maps`.
    pub fn common_limit<'a>(maps: impl IntoIterator<Item = &'a Array2<f64>>) -> f64 {
        maps.into_iter()
            .flat_map(|m| m.iter())
            .filter(|v| v.is_finite())
            .fold(0.0, |m: f64, v| m.max(v.abs()))
    }
}

/// A histogram (bars as `(low, high, height)`) with overlaid series.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub bars: Vec<(f64, f64, f64)>,
    pub overlays: Vec<Series>,
}

/// Grey-scale images (rows of `images`, each `side × side`, row-major) in a grid of `columns`,
/// each min-max rescaled to [0, 1] on its own.
#[derive(Clone, Debug)]
pub struct ImageGrid {
    pub title: String,
    pub images: Array2<f64>,
    pub side: usize,
    pub columns: usize,
}

/// One panel of a figure.
#[derive(Clone, Debug)]
pub enum Panel {
    Line(LineChart),
    Heatmap(Heatmap),
    Histogram(Histogram),
    Images(ImageGrid),
}

/// Panels in a grid of `columns` columns, with an optional legend shared by all of them in a
/// strip at the right.
#[derive(Clone, Debug)]
pub struct Figure {
    pub panels: Vec<Panel>,
    pub columns: usize,
    pub panel_size: (u32, u32),
    pub legend: Vec<Series>,
}

const LEGEND_STRIP: u32 = 360;

impl Figure {
    pub fn single(panel: Panel) -> Self {
        Self::grid(vec![panel], 1, (900, 600))
    }

    /// `columns` is the widest a row gets: fewer panels take fewer columns.
    pub fn grid(panels: Vec<Panel>, columns: usize, panel_size: (u32, u32)) -> Self {
        Self {
            columns: columns.clamp(1, panels.len().max(1)),
            panels,
            panel_size,
            legend: Vec::new(),
        }
    }

    /// One legend for every panel (the names and styles of `entries`; their points are not
    /// drawn), beside the grid rather than over any panel's data.
    pub fn with_legend(mut self, entries: Vec<Series>) -> Self {
        self.legend = entries;
        self
    }

    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns) as u32;
        let strip = if self.legend.is_empty() {
            0
        } else {
            LEGEND_STRIP
        };
        (
            self.panel_size.0 * self.columns as u32 + strip,
            self.panel_size.1 * rows.max(1),
        )
    }

    /// Writes `<dir>/<name>.png` and `<dir>/<name>.svg`.
    pub fn write(&self, dir: &Path, name: &str) -> Result<()> {
        register_font();
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
        let size = self.size();
        let png = dir.join(format!("{name}.png"));
        {
            let root = CrispText(BitMapBackend::new(&png, size)).into_drawing_area();
            self.draw(&root)
                .map_err(|e| Error::artefact("figure", &png, e))?;
            root.present()
                .map_err(|e| Error::artefact("figure", &png, format!("{e:?}")))?;
        }
        let svg = dir.join(format!("{name}.svg"));
        {
            let root = SVGBackend::new(&svg, size).into_drawing_area();
            self.draw(&root)
                .map_err(|e| Error::artefact("figure", &svg, e))?;
            root.present()
                .map_err(|e| Error::artefact("figure", &svg, format!("{e:?}")))?;
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
        let (width, _) = root.dim_in_pixel();
        let (grid, strip) = if self.legend.is_empty() {
            (root.clone(), None)
        } else {
            let (grid, strip) = root.split_horizontally(width.saturating_sub(LEGEND_STRIP));
            (grid, Some(strip))
        };
        if let Some(strip) = strip {
            draw_legend_strip(&strip, &self.legend).map_err(|e| format!("{e:?}"))?;
        }
        let rows = self.panels.len().div_ceil(self.columns);
        let areas = grid.split_evenly((rows.max(1), self.columns));
        for (panel, area) in self.panels.iter().zip(areas.iter()) {
            match panel {
                Panel::Line(c) => draw_line_chart(area, c),
                Panel::Heatmap(h) => draw_heatmap(area, h),
                Panel::Histogram(h) => draw_histogram(area, h),
                Panel::Images(g) => draw_images(area, g),
            }
            .map_err(|e| format!("{e:?}"))?;
        }
        Ok(())
    }
}

fn register_font() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // The bundled font is valid TTF; a failure would only lose text, never data.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn transform(v: f64, log: bool) -> f64 {
    if log { v.log10() } else { v }
}

fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.5 * lo.abs().max(1.0)
    };
    (lo - pad, hi + pad)
}

fn tick_label(v: f64, log: bool) -> String {
    if log {
        // The axis carries log10 of the data; label with the value itself.
        let x = 10f64.powf(v);
        return if !(1e-2..1e4).contains(&x) {
            format!("{x:.1e}")
        } else {
            // Two significant digits: 32, 100, 3200, 0.056.
            let exponent = x.log10().floor() as i32;
            let unit = 10f64.powi(exponent - 1);
            let rounded = (x / unit).round() * unit;
            let digits = (1 - exponent).max(0) as usize;
            format!("{rounded:.digits$}")
        };
    }
    // Ticks stepped across zero land a rounding error away from it (−2.2e-16).
    if v.abs() < 1e-14 {
        return "0".into();
    }
    // Large round ticks read best in full (20000, not 2.0e4) up to seven digits.
    if (1e4..1e7).contains(&v.abs()) && (v - v.round()).abs() < 1e-6 * v.abs() {
        return format!("{}", v.round() as i64);
    }
    // Ticks land a rounding error beside round values (−0.0099999…): judge with a tolerance.
    if v.abs() >= 1e4 * (1.0 - 1e-9) || v.abs() < 1e-2 * (1.0 - 1e-9) {
        format!("{v:.1e}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn draw_line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &LineChart,
) -> DrawResult<DB> {
    let points = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .map(|&(x, y)| (transform(x, chart.log_x), transform(y, chart.log_y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let lines: Vec<Vec<(f64, f64)>> = chart.series.iter().map(points).collect();
    let x_range = padded_range(lines.iter().flatten().map(|p| p.0));
    let y_range = padded_range(lines.iter().flatten().map(|p| p.1));
    let names: Vec<&str> = chart
        .series
        .iter()
        .filter_map(|s| s.name.as_deref())
        .filter(|_| !chart.hide_legend)
        .collect();
    let placement = legend_placement(
        &lines,
        x_range,
        y_range,
        legend_fraction(area, &names, (70, 40)),
    );
    let y_range = placement.y_range;
    let mut ctx = ChartBuilder::on(area)
        .caption(typeset(&chart.title), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
    ctx.configure_mesh()
        .x_desc(typeset(&chart.x_label))
        .y_desc(typeset(&chart.y_label))
        .x_label_formatter(&|v| tick_label(*v, chart.log_x))
        .y_label_formatter(&|v| tick_label(*v, chart.log_y))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (s, pts) in chart.series.iter().zip(lines) {
        let color = colour(s.color);
        let anno = match s.style {
            Style::Line => ctx.draw_series(LineSeries::new(pts, color.stroke_width(2)))?,
            Style::Dashed => ctx.draw_series(DashedLineSeries::new(
                pts,
                6,
                4,
                color.mix(0.8).stroke_width(1),
            ))?,
            Style::Markers => {
                ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?
            }
            Style::LineMarkers => {
                ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(1)))?;
                ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?
            }
            Style::DashedMarkers => {
                ctx.draw_series(DashedLineSeries::new(
                    pts.clone(),
                    6,
                    4,
                    color.stroke_width(1),
                ))?;
                ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?
            }
        };
        if let Some(name) = s.name.as_ref().filter(|_| !chart.hide_legend) {
            label_series(anno, name, s.style, color);
        }
        if let Some(errors) = &s.errors {
            let bars: Vec<_> = s
                .points
                .iter()
                .zip(errors)
                .filter(|(_, e)| e.is_finite())
                .map(|(&(x, y), &e)| {
                    let x = transform(x, chart.log_x);
                    let lo = transform(y - e, chart.log_y);
                    let hi = transform(y + e, chart.log_y);
                    let lo = if lo.is_finite() { lo } else { y_range.0 };
                    ErrorBar::new_vertical(x, lo, transform(y, chart.log_y), hi, color, 6)
                })
                .collect();
            ctx.draw_series(bars)?;
        }
    }
    if !names.is_empty() {
        ctx.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", LEGEND_FONT))
            .position(placement.corner)
            .draw()?;
    }
    Ok(())
}

const LEGEND_FONT: u32 = 13;

/// A legend entry's sample, as the series is drawn: three stroke segments (touching for a
/// solid line, apart for a dashed one, invisible for markers only) and a marker (invisible
/// for lines). Returns the segments' x extents, their width and colour, and the marker colour.
type Swatch = ([(i32, i32); 3], u32, RGBAColor, RGBAColor);

fn swatch(style: Style, color: RGBColor) -> Swatch {
    let (segments, width) = match style {
        Style::Dashed => ([(0, 4), (7, 11), (14, 18)], 2),
        Style::Line => ([(0, 6), (6, 12), (12, 18)], 3),
        Style::Markers | Style::LineMarkers => ([(0, 6), (6, 12), (12, 18)], 1),
        Style::DashedMarkers => ([(0, 4), (7, 11), (14, 18)], 1),
    };
    let line = if style == Style::Markers {
        color.mix(0.0)
    } else {
        color.mix(1.0)
    };
    let marker = if matches!(
        style,
        Style::Markers | Style::LineMarkers | Style::DashedMarkers
    ) {
        color.mix(1.0)
    } else {
        color.mix(0.0)
    };
    (segments, width, line, marker)
}

/// Attaches `name` to a drawn series with the legend swatch of `style`.
fn label_series<'a, DB: DrawingBackend + 'a>(
    anno: &mut SeriesAnno<'a, DB>,
    name: &str,
    style: Style,
    color: RGBColor,
) {
    let (segments, width, line, marker) = swatch(style, color);
    anno.label(typeset(name)).legend(move |at| {
        let segment =
            |(a, b): (i32, i32)| PathElement::new(vec![(a, 0), (b, 0)], line.stroke_width(width));
        EmptyElement::at(at)
            + segment(segments[0])
            + segment(segments[1])
            + segment(segments[2])
            + Circle::new((9, 0), 4, marker.filled())
    });
}

/// The shared legend: one entry per named series, swatch and name, from the top of `area`.
fn draw_legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Series],
) -> DrawResult<DB> {
    let text = TextStyle::from(("sans-serif", LEGEND_FONT).into_font()).color(&BLACK);
    let mut y = 60;
    for entry in entries {
        let Some(name) = &entry.name else { continue };
        let (segments, width, line, marker) = swatch(entry.style, colour(entry.color));
        for (a, b) in segments {
            area.draw(&PathElement::new(
                vec![(10 + a, y), (10 + b, y)],
                line.stroke_width(width),
            ))?;
        }
        area.draw(&Circle::new((19, y), 4, marker.filled()))?;
        area.draw_text(&typeset(name), &text, (36, y - 7))?;
        y += 22;
    }
    Ok(())
}

/// The legend box as fractions of the plot's width and height: 13-px labels (~7 px per
/// character) after an 18-px swatch, ~19 px per entry; the plot is the area less its margins
/// and its (y, x) label areas.
fn legend_fraction<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[&str],
    label_areas: (u32, u32),
) -> (f64, f64) {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let (width, height) = area.dim_in_pixel();
    let plot_width = (f64::from(width) - 24.0 - f64::from(label_areas.0)).max(1.0);
    let plot_height = (f64::from(height) - 24.0 - f64::from(label_areas.1) - 30.0).max(1.0);
    (
        ((40.0 + 7.0 * longest as f64) / plot_width).min(1.0),
        ((10.0 + 19.0 * names.len() as f64) / plot_height).min(1.0),
    )
}

/// Where the legend goes, and the y range that makes room for it.
#[derive(Debug)]
struct LegendPlacement {
    corner: SeriesLabelPosition,
    y_range: (f64, f64),
}

/// The corner where a legend box of `box_fraction` (width, height as fractions of the plot)
/// covers the fewest of the drawn points and line samples (upper right on ties, then upper
/// left, lower right, lower left). When every corner would hide data, the y range grows
/// upward until the box sits above all of it: a legend never covers data.
fn legend_placement(
    lines: &[Vec<(f64, f64)>],
    x_range: (f64, f64),
    y_range: (f64, f64),
    box_fraction: (f64, f64),
) -> LegendPlacement {
    let scale = |v: f64, (lo, hi): (f64, f64)| (v - lo) / (hi - lo).max(f64::MIN_POSITIVE);
    // Points and, along each segment, 16 samples: a line under the box is hidden too.
    let mut samples = Vec::new();
    for line in lines {
        for (k, &(x, y)) in line.iter().enumerate() {
            samples.push((scale(x, x_range), scale(y, y_range)));
            if let Some(&(nx, ny)) = line.get(k + 1) {
                for step in 1..16 {
                    let f = step as f64 / 16.0;
                    samples.push((
                        scale(x + f * (nx - x), x_range),
                        scale(y + f * (ny - y), y_range),
                    ));
                }
            }
        }
    }
    let (w, h) = box_fraction;
    let covered = |right: bool, upper: bool| {
        samples
            .iter()
            .filter(|&&(x, y)| {
                let inside_x = if right { x >= 1.0 - w } else { x <= w };
                let inside_y = if upper { y >= 1.0 - h } else { y <= h };
                inside_x && inside_y
            })
            .count()
    };
    let (corner, hidden) = [
        (SeriesLabelPosition::UpperRight, covered(true, true)),
        (SeriesLabelPosition::UpperLeft, covered(false, true)),
        (SeriesLabelPosition::LowerRight, covered(true, false)),
        (SeriesLabelPosition::LowerLeft, covered(false, false)),
    ]
    .into_iter()
    .min_by_key(|&(_, n)| n)
    .unwrap_or((SeriesLabelPosition::UpperRight, 0));
    if hidden == 0 || h > 0.6 {
        return LegendPlacement { corner, y_range };
    }
    // The data keep the lower 1 − h − 3 % of the plot; the box takes the band above.
    let span = (y_range.1 - y_range.0) / (1.0 - h - 0.03);
    LegendPlacement {
        corner: SeriesLabelPosition::UpperRight,
        y_range: (y_range.0, y_range.0 + span),
    }
}

fn color_map(t: f64) -> RGBColor {
    // Diverging blue–white–red for t in [-1, 1].
    let t = t.clamp(-1.0, 1.0);
    let (r, g, b) = if t < 0.0 {
        let s = -t;
        (1.0 - 0.8 * s, 1.0 - 0.6 * s, 1.0)
    } else {
        (1.0, 1.0 - 0.7 * t, 1.0 - 0.8 * t)
    };
    RGBColor((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    map: &Heatmap,
) -> DrawResult<DB> {
    const CAPTION: u32 = 16;
    const COLOUR_BAR: u32 = 90;
    let (rows, cols) = map.values.dim();
    let limit = map
        .limit
        .unwrap_or_else(|| Heatmap::common_limit([&map.values]))
        .max(f64::MIN_POSITIVE);
    let (width, _) = area.dim_in_pixel();
    let (matrix_area, bar_area) = area.split_horizontally(width.saturating_sub(COLOUR_BAR));
    let x_label_area = if map.x_label.is_empty() { 25 } else { 45 };
    let mut ctx = ChartBuilder::on(&matrix_area)
        .caption(typeset(&map.title), ("sans-serif", CAPTION))
        .margin(10)
        .x_label_area_size(x_label_area)
        .y_label_area_size(if map.y_label.is_empty() { 30 } else { 50 })
        .build_cartesian_2d(
            (0..cols.saturating_sub(1)).into_segmented(),
            (0..rows.saturating_sub(1)).into_segmented(),
        )?;
    // Row 0 at the top, as a matrix is read; labels sit at the centres of the cells, at most
    // about a dozen per axis.
    let every = |n: usize| {
        [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000]
            .into_iter()
            .find(|&step| step * 12 >= n)
            .unwrap_or(n.div_ceil(12))
    };
    let centre = |v: &SegmentValue<usize>, n: usize, flip: bool| match v {
        SegmentValue::CenterOf(k) if *k < n => {
            let index = if flip { n - 1 - k } else { *k };
            if index % every(n) == 0 {
                index.to_string()
            } else {
                String::new()
            }
        }
        _ => String::new(),
    };
    ctx.configure_mesh()
        .disable_mesh()
        .x_labels(cols)
        .y_labels(rows)
        .x_desc(typeset(&map.x_label))
        .y_desc(typeset(&map.y_label))
        .x_label_formatter(&|v| centre(v, cols, false))
        .y_label_formatter(&|v| centre(v, rows, true))
        .draw()?;
    ctx.draw_series((0..rows).flat_map(|i| {
        let values = &map.values;
        (0..cols).map(move |j| {
            let color = color_map(values[[i, j]] / limit);
            Rectangle::new(
                [
                    (SegmentValue::Exact(j), SegmentValue::Exact(rows - 1 - i)),
                    (SegmentValue::Exact(j + 1), SegmentValue::Exact(rows - i)),
                ],
                color.filled(),
            )
        })
    }))?;
    // The colour bar: the same caption and label areas (a blank caption of the same size), so
    // that its ends line up with the matrix.
    let mut bar = ChartBuilder::on(&bar_area)
        .caption(" ", ("sans-serif", CAPTION))
        .margin(10)
        .margin_left(4)
        .x_label_area_size(x_label_area)
        .right_y_label_area_size(55)
        .build_cartesian_2d(0.0..1.0, -limit..limit)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .label_style(("sans-serif", 12))
        .y_label_formatter(&|v| tick_label(*v, false))
        .draw()?;
    const STEPS: usize = 128;
    bar.draw_series((0..STEPS).map(|k| {
        let lo = -limit + 2.0 * limit * k as f64 / STEPS as f64;
        let hi = -limit + 2.0 * limit * (k + 1) as f64 / STEPS as f64;
        Rectangle::new(
            [(0.0, lo), (1.0, hi)],
            color_map((lo + hi) / (2.0 * limit)).filled(),
        )
    }))?;
    Ok(())
}

/// Renders the grid into one RGB buffer (nearest-neighbour scaled to fill the panel) so that an
/// SVG embeds it as a single PNG instead of one rectangle per pixel.
fn draw_images<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    grid: &ImageGrid,
) -> DrawResult<DB> {
    const CAPTION: u32 = 30;
    const GAP: u32 = 2;
    let title_area = area.titled(&typeset(&grid.title), ("sans-serif", 16))?;
    let (width, height) = title_area.dim_in_pixel();
    let count = grid.images.nrows();
    let columns = grid.columns.max(1);
    let rows = count.div_ceil(columns).max(1);
    let side = grid.side.max(1) as u32;
    let cell = ((width.saturating_sub(GAP * (columns as u32 + 1))) / (columns as u32))
        .min(height.saturating_sub(GAP * (rows as u32 + 1) + CAPTION / 3) / rows as u32);
    let scale = (cell / side).max(1);
    let cell = scale * side;
    let buffer_width = columns as u32 * (cell + GAP) + GAP;
    let buffer_height = rows as u32 * (cell + GAP) + GAP;
    let mut buffer = vec![255u8; (buffer_width * buffer_height * 3) as usize];
    for (index, image) in grid.images.rows().into_iter().enumerate() {
        let lo = image.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = image.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let x0 = GAP + (index % columns) as u32 * (cell + GAP);
        let y0 = GAP + (index / columns) as u32 * (cell + GAP);
        for py in 0..cell {
            for px in 0..cell {
                let pixel = (py / scale) as usize * grid.side + (px / scale) as usize;
                let value = image.get(pixel).copied().unwrap_or(lo);
                // MNIST convention: ink is white on black.
                let grey = (((value - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
                let offset = (((y0 + py) * buffer_width + x0 + px) * 3) as usize;
                buffer[offset..offset + 3].fill(grey);
            }
        }
    }
    let left = (width.saturating_sub(buffer_width) / 2) as i32;
    if let Some(element) =
        BitMapElement::with_owned_buffer((left, 0), (buffer_width, buffer_height), buffer)
    {
        title_area.draw(&element)?;
    }
    Ok(())
}

fn draw_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    hist: &Histogram,
) -> DrawResult<DB> {
    let x_range = padded_range(
        hist.bars.iter().flat_map(|b| [b.0, b.1]).chain(
            hist.overlays
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0)),
        ),
    );
    let y_max = hist
        .bars
        .iter()
        .map(|b| b.2)
        .chain(
            hist.overlays
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1)),
        )
        .fold(0.0_f64, f64::max);
    // Bars count as their tops and centre lines, so that the legend avoids them too.
    let outlines: Vec<Vec<(f64, f64)>> = hist
        .bars
        .iter()
        .flat_map(|&(lo, hi, h)| {
            [
                vec![(lo, h), (hi, h)],
                vec![(0.5 * (lo + hi), 0.0), (0.5 * (lo + hi), h)],
            ]
        })
        .chain(hist.overlays.iter().map(|s| s.points.clone()))
        .collect();
    let names: Vec<&str> = hist
        .overlays
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    let placement = legend_placement(
        &outlines,
        x_range,
        (0.0, y_max * 1.05 + f64::MIN_POSITIVE),
        legend_fraction(area, &names, (60, 40)),
    );
    let y_range = placement.y_range;
    let mut ctx = ChartBuilder::on(area)
        .caption(typeset(&hist.title), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
    ctx.configure_mesh()
        .x_desc(typeset(&hist.x_label))
        .y_desc(typeset(&hist.y_label))
        .x_label_formatter(&|v| tick_label(*v, false))
        .y_label_formatter(&|v| tick_label(*v, false))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    ctx.draw_series(
        hist.bars.iter().map(|&(lo, hi, h)| {
            Rectangle::new([(lo, 0.0), (hi, h)], PALETTE[0].mix(0.45).filled())
        }),
    )?;
    for s in &hist.overlays {
        let color = colour(s.color);
        let anno = match s.style {
            Style::Dashed => ctx.draw_series(DashedLineSeries::new(
                s.points.clone(),
                6,
                4,
                color.stroke_width(2),
            ))?,
            _ => ctx.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))?,
        };
        if let Some(name) = &s.name {
            label_series(anno, name, s.style, color);
        }
    }
    if !names.is_empty() {
        ctx.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", LEGEND_FONT))
            .position(placement.corner)
            .draw()?;
    }
    Ok(())
}

/// Writes `out`: the PNGs `left` and `right` side by side under the captions, each with a note
/// of how many of its pixels differ from the other's (when the sizes match).
pub fn side_by_side(left: &Path, right: &Path, captions: [&str; 2], out: &Path) -> Result<()> {
    register_font();
    let decode = |path: &Path| {
        image::open(path)
            .map(|i| i.to_rgb8())
            .map_err(|e| Error::unreadable("figure", path, e))
    };
    let (a, b) = (decode(left)?, decode(right)?);
    let changed = if a.dimensions() == b.dimensions() {
        let differing = a.pixels().zip(b.pixels()).filter(|(p, q)| p != q).count();
        let total = (a.width() * a.height()).max(1) as f64;
        if differing == 0 {
            "identical pixels".to_string()
        } else {
            format!("{:.2} % of pixels differ", 100.0 * differing as f64 / total)
        }
    } else {
        format!(
            "sizes differ: {}×{} vs {}×{}",
            a.width(),
            a.height(),
            b.width(),
            b.height()
        )
    };
    const CAPTION: u32 = 36;
    const GAP: u32 = 16;
    let width = a.width() + GAP + b.width();
    let height = CAPTION + a.height().max(b.height());
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    image::imageops::overlay(&mut canvas, &a, 0, i64::from(CAPTION));
    image::imageops::overlay(
        &mut canvas,
        &b,
        i64::from(a.width() + GAP),
        i64::from(CAPTION),
    );
    {
        let root = BitMapBackend::with_buffer(&mut canvas, (width, height)).into_drawing_area();
        let style = TextStyle::from(("sans-serif", 18).into_font()).color(&BLACK);
        let note = TextStyle::from(("sans-serif", 14).into_font()).color(&RGBColor(90, 96, 106));
        for (x, caption) in [(0, captions[0]), (a.width() + GAP, captions[1])] {
            let x = x as i32 + 8;
            root.draw_text(caption, &style, (x, 4))
                .map_err(|e| Error::artefact("figure", out, format!("{e:?}")))?;
            root.draw_text(&changed, &note, (x, 22))
                .map_err(|e| Error::artefact("figure", out, format!("{e:?}")))?;
        }
        root.present()
            .map_err(|e| Error::artefact("figure", out, format!("{e:?}")))?;
    }
    let mut png = std::io::Cursor::new(Vec::new());
    canvas
        .write_to(&mut png, image::ImageOutputFormat::Png)
        .map_err(|e| Error::artefact("figure", out, e))?;
    crate::fsutil::write_atomic(out, png.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log-axis ticks carry two significant digits.
    #[test]
    fn log_ticks_have_two_significant_digits() {
        let label = |x: f64| tick_label(x.log10(), true);
        assert_eq!(label(3162.3), "3200");
        assert_eq!(label(31.62), "32");
        assert_eq!(label(100.0), "100");
        assert_eq!(label(0.05623), "0.056");
        assert_eq!(label(1e5), "1.0e5");
    }

    /// The legend goes to the corner its box covers least; upper right when nothing is in the
    /// way; a line crossing a corner counts even without a point there; when every corner holds
    /// data, the y range grows so that the box sits above all of it.
    #[test]
    fn the_legend_avoids_the_data() {
        let range = (0.0, 1.0);
        let place = |lines: &[Vec<(f64, f64)>]| legend_placement(lines, range, range, (0.4, 0.3));
        let corner = |lines: &[Vec<(f64, f64)>]| place(lines).corner;
        assert!(matches!(corner(&[]), SeriesLabelPosition::UpperRight));
        let upper_right = vec![vec![(0.9, 0.9), (0.8, 0.8)]];
        assert!(matches!(
            corner(&upper_right),
            SeriesLabelPosition::UpperLeft
        ));
        let top = vec![vec![(0.0, 0.95), (1.0, 0.95)], vec![(0.1, 0.1)]];
        assert!(matches!(corner(&top), SeriesLabelPosition::LowerRight));
        assert_eq!(place(&top).y_range, range);
        let everywhere = vec![vec![(0.0, 0.0), (1.0, 1.0)], vec![(0.0, 1.0), (1.0, 0.0)]];
        let grown = place(&everywhere);
        assert!(matches!(grown.corner, SeriesLabelPosition::UpperRight));
        let (lo, hi) = grown.y_range;
        assert_eq!(lo, 0.0);
        let box_bottom = hi - 0.3 * (hi - lo);
        assert!(
            box_bottom > 1.0,
            "the box starts at {box_bottom}, below the data's top"
        );
    }

    /// Regression (dwe `sweep` with one regime): a grid of fewer panels than columns is as wide
    /// as its panels, and the panel fills it instead of the left half.
    #[test]
    fn fewer_panels_than_columns_take_fewer_columns() {
        let chart = || Panel::Line(LineChart::default());
        let one = Figure::grid(vec![chart()], 2, (640, 440));
        assert_eq!(one.columns, 1);
        assert_eq!(one.size(), (640, 440));
        let three = Figure::grid(vec![chart(), chart(), chart()], 2, (640, 440));
        assert_eq!(three.size(), (1280, 880));
        let with_legend = three.with_legend(vec![Series::new(
            Some("a".into()),
            Vec::new(),
            0,
            Style::Line,
        )]);
        assert_eq!(with_legend.size(), (1280 + LEGEND_STRIP, 880));
    }

    /// Heat-map panels compared by eye share the largest |value| of all of them.
    #[test]
    fn a_common_limit_covers_every_panel() {
        let a = Array2::from_shape_vec((1, 2), vec![0.1, -0.3]).unwrap();
        let b = Array2::from_shape_vec((1, 2), vec![0.2, f64::NAN]).unwrap();
        assert_eq!(Heatmap::common_limit([&a, &b]), 0.3);
    }

    /// Rounding-error ticks read as the round values they stand for.
    #[test]
    fn ticks_read_as_round_values() {
        assert_eq!(tick_label(-0.009_999_999_999_999_9, false), "-0.01");
        assert_eq!(tick_label(20000.0, false), "20000");
        assert_eq!(tick_label(0.005, false), "5.0e-3");
        assert_eq!(tick_label(2.5e7, false), "2.5e7");
    }
}
