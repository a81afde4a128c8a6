//! Writing artefacts: `.npy` arrays, tables (polars: CSV and parquet, stable column order,
//! sorted rows, fixed float formatting) and figures (plotters: PNG and SVG).

pub mod figure;
pub mod npy;
pub mod table;
