//! Result tables: typed columns → polars DataFrame → CSV and parquet.
//!
//! Columns keep the order they are declared in; rows are sorted by the declared key columns;
//! floats are written in scientific notation with 10 significant digits, so a `git diff` of a CSV
//! shows only real changes. The parquet file records the key columns in its file metadata
//! ([`KEYS_METADATA`]), which is how `symbreak diff` joins the rows of two runs, and what every
//! column means ([`COLUMNS_METADATA`]): a description, a [`Unit`] and, for a standard-error
//! column, the column it is the error of. A table whose columns are not all described is not
//! written.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

/// Parquet file-metadata key under which a table's key columns are stored (a JSON list).
pub const KEYS_METADATA: &str = "symbreak.keys";

/// Parquet file-metadata key of the columns that measure the machine (wall-clock times and
/// their ratios): they differ between identical computations, so `symbreak diff` leaves them
/// out unless asked (a JSON list).
pub const WALL_CLOCK_METADATA: &str = "symbreak.wall_clock";

/// Parquet file-metadata key of the columns' descriptions, units and error pairings (a JSON
/// list of [`ColumnInfo`] in column order).
pub const COLUMNS_METADATA: &str = "symbreak.columns";

/// The unit of a column. One convention across every table: times in seconds, shares and
/// overheads as fractions (never per cent), training time in updates, log-likelihoods in nats,
/// lattice quantities in lattice units (a = 1, so they are pure numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A name, category or flag word (string columns).
    Label,
    /// A pure number: ratios, fractions, cosines, correlations, learning rates, lattice units.
    One,
    /// A number of things (documents, tokens, seeds, rows).
    Count,
    /// A yes/no switch written as 1 or 0.
    Flag,
    /// A position in a list (0-based unless the description says otherwise).
    Index,
    /// Training time counted in parameter updates (gradient or Gibbs steps).
    Updates,
    /// A rate per parameter update.
    PerUpdate,
    /// Wall-clock seconds.
    Seconds,
    /// Natural-log units of a (log-)likelihood or loss.
    Nats,
    /// A calendar year.
    Year,
    /// A duration in years.
    Years,
    /// Bytes.
    Bytes,
    /// Megabytes (10⁶ bytes) per wall-clock second.
    MegabytesPerSecond,
    /// Occurrences per million tokens.
    PerMillion,
}

impl Unit {
    /// Every unit, in the order the documentation lists them.
    pub const ALL: [Unit; 14] = [
        Unit::Label,
        Unit::One,
        Unit::Count,
        Unit::Flag,
        Unit::Index,
        Unit::Updates,
        Unit::PerUpdate,
        Unit::Seconds,
        Unit::Nats,
        Unit::Year,
        Unit::Years,
        Unit::Bytes,
        Unit::MegabytesPerSecond,
        Unit::PerMillion,
    ];

    /// What a value in this unit is, in words (for `docs/results-format.md`).
    pub fn meaning(self) -> &'static str {
        match self {
            Unit::Label => "a name, category or flag word (string columns)",
            Unit::One => {
                "a pure number: ratios, fractions (never per cent), cosines, correlations, \
                 learning rates, quantities in lattice units (a = 1), squared errors of \
                 dimensionless data"
            }
            Unit::Count => "a number of things (documents, tokens, seeds, flat directions)",
            Unit::Flag => "a yes/no switch: 1 or 0",
            Unit::Index => "a position in a list: a mode, a rank, a lattice site, a seed",
            Unit::Updates => "training time counted in parameter updates (iterations)",
            Unit::PerUpdate => "a rate per parameter update",
            Unit::Seconds => "wall-clock seconds (a `symbreak.wall_clock` column)",
            Unit::Nats => {
                "natural-log units of a log-likelihood or of a loss that is a negative log-likelihood"
            }
            Unit::Year => "a calendar year",
            Unit::Years => "a duration in years",
            Unit::Bytes => "bytes",
            Unit::MegabytesPerSecond => "10⁶ bytes per wall-clock second",
            Unit::PerMillion => "occurrences per million words",
        }
    }

    /// How the unit is written in table headers and metadata.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Label => "label",
            Unit::One => "1",
            Unit::Count => "count",
            Unit::Flag => "0/1",
            Unit::Index => "index",
            Unit::Updates => "updates",
            Unit::PerUpdate => "1/update",
            Unit::Seconds => "s",
            Unit::Nats => "nat",
            Unit::Year => "year",
            Unit::Years => "years",
            Unit::Bytes => "B",
            Unit::MegabytesPerSecond => "MB/s",
            Unit::PerMillion => "per million",
        }
    }
}

/// What one column means, as a table declares it ([`Table::describe`]).
#[derive(Clone, Copy, Debug)]
pub struct ColumnDoc {
    pub name: &'static str,
    pub unit: Unit,
    pub description: &'static str,
    /// For a standard-error column: the column it is the error of (its unit is that column's).
    pub error_of: Option<&'static str>,
}

/// A column `name` in `unit`, meaning `description`.
pub const fn col(name: &'static str, unit: Unit, description: &'static str) -> ColumnDoc {
    ColumnDoc {
        name,
        unit,
        description,
        error_of: None,
    }
}

/// The standard-error column `name` of column `of` (in `of`'s unit).
pub const fn std_error(
    name: &'static str,
    of: &'static str,
    description: &'static str,
) -> ColumnDoc {
    ColumnDoc {
        name,
        unit: Unit::One,
        description,
        error_of: Some(of),
    }
}

/// A column's description as stored in the parquet metadata and read back.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// [`Unit::symbol`].
    pub unit: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_of: Option<String>,
}

/// A column of a result table.
pub enum ColumnData {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

/// A named table with key columns to sort by.
pub struct Table {
    pub name: String,
    pub keys: Vec<String>,
    /// Columns that measure the machine, not the computation.
    pub wall_clock: Vec<String>,
    columns: Vec<(String, ColumnData)>,
    /// Column name → (unit, description, error of).
    docs: std::collections::BTreeMap<String, (Unit, String, Option<String>)>,
}

impl Table {
    pub fn new(name: impl Into<String>, keys: &[&str]) -> Self {
        Self {
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            wall_clock: Vec::new(),
            columns: Vec::new(),
            docs: Default::default(),
        }
    }

    /// Declares what columns mean. Entries naming no column of this table are passed over, so
    /// one list can describe the columns several tables share; a later entry for a column
    /// replaces an earlier one.
    pub fn describe(mut self, docs: &[ColumnDoc]) -> Self {
        for doc in docs {
            self = self.describe_column(
                doc.name,
                doc.unit,
                doc.description,
                doc.error_of.map(str::to_string),
            );
        }
        self
    }

    /// Declares one column whose name or description is made at run time (e.g. one column per
    /// optimiser); as [`Table::describe`].
    pub fn describe_column(
        mut self,
        name: &str,
        unit: Unit,
        description: impl Into<String>,
        error_of: Option<String>,
    ) -> Self {
        if self.columns.iter().any(|(n, _)| n == name) {
            self.docs
                .insert(name.to_string(), (unit, description.into(), error_of));
        }
        self
    }

    /// Every column's description in column order; an error names the first column without
    /// one, or an error column whose value column is not in the table.
    pub fn column_infos(&self) -> Result<Vec<ColumnInfo>> {
        let failed = |message: String| Error::Other(format!("table {}: {message}", self.name));
        self.columns
            .iter()
            .map(|(name, _)| {
                let (unit, description, error_of) = self.docs.get(name).ok_or_else(|| {
                    failed(format!(
                        "column {name} has no description and unit (declare it with Table::describe)"
                    ))
                })?;
                let unit = match error_of {
                    Some(of) => match self.docs.get(of) {
                        Some((of_unit, _, _)) if self.columns.iter().any(|(n, _)| n == of) => {
                            *of_unit
                        }
                        _ => {
                            return Err(failed(format!(
                                "column {name} is the error of {of}, which is not a described column of the table"
                            )));
                        }
                    },
                    None => *unit,
                };
                Ok(ColumnInfo {
                    name: name.clone(),
                    unit: unit.symbol().to_string(),
                    description: description.clone(),
                    error_of: error_of.clone(),
                })
            })
            .collect()
    }

    /// Marks `columns` as wall-clock measurements (see [`WALL_CLOCK_METADATA`]).
    pub fn wall_clock(mut self, columns: &[&str]) -> Self {
        self.wall_clock
            .extend(columns.iter().map(|c| c.to_string()));
        self
    }

    /// The table without `columns` (fields of a row type that the table does not show).
    pub fn without(mut self, columns: &[&str]) -> Self {
        self.columns
            .retain(|(name, _)| !columns.contains(&name.as_str()));
        self
    }

    pub fn f64(mut self, name: &str, values: Vec<f64>) -> Self {
        self.columns.push((name.into(), ColumnData::F64(values)));
        self
    }

    pub fn i64(mut self, name: &str, values: Vec<i64>) -> Self {
        self.columns.push((name.into(), ColumnData::I64(values)));
        self
    }

    pub fn str(mut self, name: &str, values: Vec<String>) -> Self {
        self.columns.push((name.into(), ColumnData::Str(values)));
        self
    }

    fn frame(&self, path: &Path) -> Result<DataFrame> {
        let columns: Vec<Column> = self
            .columns
            .iter()
            .map(|(name, data)| match data {
                ColumnData::F64(v) => Column::new(name.as_str().into(), v),
                ColumnData::I64(v) => Column::new(name.as_str().into(), v),
                ColumnData::Str(v) => Column::new(name.as_str().into(), v),
            })
            .collect();
        let df =
            DataFrame::new_infer_height(columns).map_err(|e| Error::artefact("table", path, e))?;
        if self.keys.is_empty() {
            return Ok(df);
        }
        df.sort(
            self.keys.clone(),
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .map_err(|e| Error::artefact("table", path, e))
    }

    /// Writes `<dir>/<name>.csv` and `<dir>/<name>.parquet`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let infos = self.column_infos()?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
        let csv_path = dir.join(format!("{}.csv", self.name));
        let mut df = self.frame(&csv_path)?;
        let mut csv = Vec::new();
        CsvWriter::new(&mut csv)
            .include_header(true)
            .with_float_scientific(Some(true))
            .with_float_precision(Some(9))
            .finish(&mut df)
            .map_err(|e| Error::artefact("csv table", &csv_path, e))?;
        crate::fsutil::write_atomic(&csv_path, &csv)?;
        let parquet_path = dir.join(format!("{}.parquet", self.name));
        let mut parquet = Vec::new();
        let list = |names: &Vec<String>| {
            serde_json::to_string(names).expect("a list of strings serialises")
        };
        ParquetWriter::new(&mut parquet)
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![
                (KEYS_METADATA.to_string(), list(&self.keys)),
                (WALL_CLOCK_METADATA.to_string(), list(&self.wall_clock)),
                (
                    COLUMNS_METADATA.to_string(),
                    serde_json::to_string(&infos).expect("column descriptions serialise"),
                ),
            ])))
            .finish(&mut df)
            .map_err(|e| Error::artefact("parquet table", &parquet_path, e))?;
        crate::fsutil::write_atomic(&parquet_path, &parquet)
    }
}

/// A table read back from a run folder.
pub struct LoadedTable {
    pub frame: DataFrame,
    /// The declared key columns, or `None` when the file does not record them.
    pub keys: Option<Vec<String>>,
    /// The declared wall-clock columns (none when the file does not record them).
    pub wall_clock: Vec<String>,
    /// The columns' descriptions (empty when the file does not record them).
    pub columns: Vec<ColumnInfo>,
}

impl LoadedTable {
    /// The standard-error column declared for `column`, if any.
    pub fn error_column_of(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| c.error_of.as_deref() == Some(column))
            .map(|c| c.name.as_str())
    }
}

/// Reads `<name>.parquet` (typed, full precision) with its declared keys.
pub fn read_parquet(path: &Path) -> Result<LoadedTable> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut reader = ParquetReader::new(file);
    let metadata = key_value_metadata(&mut reader, path)?;
    let list = |key: &str| {
        metadata
            .get(key)
            .and_then(|json| serde_json::from_str::<Vec<String>>(json).ok())
    };
    let (keys, wall_clock) = (list(KEYS_METADATA), list(WALL_CLOCK_METADATA));
    let columns = column_infos_in(&metadata);
    let frame = reader
        .finish()
        .map_err(|e| Error::unreadable("parquet table", path, e))?;
    Ok(LoadedTable {
        frame,
        keys,
        wall_clock: wall_clock.unwrap_or_default(),
        columns,
    })
}

/// The column descriptions of the parquet table at `path`, without reading its rows.
pub fn read_column_infos(path: &Path) -> Result<Vec<ColumnInfo>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let metadata = key_value_metadata(&mut ParquetReader::new(file), path)?;
    Ok(column_infos_in(&metadata))
}

/// The key-value pairs of a parquet file's metadata.
fn key_value_metadata(
    reader: &mut ParquetReader<std::fs::File>,
    path: &Path,
) -> Result<std::collections::BTreeMap<String, String>> {
    let metadata = reader
        .get_metadata()
        .map_err(|e| Error::unreadable("parquet table", path, e))?;
    Ok(metadata
        .key_value_metadata()
        .iter()
        .flatten()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect())
}

/// The column descriptions among a file's metadata (none for files written before they were).
fn column_infos_in(metadata: &std::collections::BTreeMap<String, String>) -> Vec<ColumnInfo> {
    metadata
        .get(COLUMNS_METADATA)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// One cell of a row as serialised by [`Table::from_rows`].
enum Cell {
    F64(f64),
    I64(i64),
    Str(String),
    /// `None` of an `Option<f64>`: a NaN cell.
    Missing,
}

impl Table {
    /// A table with one column per field of `T`, in declaration order, and one row per element
    /// of `rows`: integers become `i64` columns, floats (and `Option<f64>`, `None` as NaN)
    /// `f64` columns, strings and unit enum variants string columns. `T::default()` fixes the
    /// columns of an empty table.
    pub fn from_rows<T: serde::Serialize + Default>(
        name: impl Into<String>,
        keys: &[&str],
        rows: &[T],
    ) -> Result<Self> {
        let name = name.into();
        let failed = |message: String| Error::Other(format!("table {name}: {message}"));
        let mut fields: Vec<(String, Vec<Cell>)> = Vec::new();
        let template = T::default();
        let schema = row_cells(&template).map_err(&failed)?;
        for (field, _) in &schema {
            fields.push((field.to_string(), Vec::with_capacity(rows.len())));
        }
        for row in rows {
            let cells = row_cells(row).map_err(&failed)?;
            for ((_, column), (_, cell)) in fields.iter_mut().zip(cells) {
                column.push(cell);
            }
        }
        let mut table = Table::new(name.clone(), keys);
        for ((field, cells), (_, example)) in fields.into_iter().zip(schema) {
            let is = |want: fn(&Cell) -> bool| cells.iter().all(want);
            let data = match example {
                Cell::I64(_) if is(|c| matches!(c, Cell::I64(_))) => ColumnData::I64(
                    cells
                        .into_iter()
                        .map(|c| if let Cell::I64(v) = c { v } else { 0 })
                        .collect(),
                ),
                Cell::Str(_) if is(|c| matches!(c, Cell::Str(_))) => ColumnData::Str(
                    cells
                        .into_iter()
                        .map(|c| {
                            if let Cell::Str(v) = c {
                                v
                            } else {
                                String::new()
                            }
                        })
                        .collect(),
                ),
                Cell::F64(_) | Cell::Missing
                    if is(|c| matches!(c, Cell::F64(_) | Cell::Missing)) =>
                {
                    ColumnData::F64(
                        cells
                            .into_iter()
                            .map(|c| if let Cell::F64(v) = c { v } else { f64::NAN })
                            .collect(),
                    )
                }
                _ => return Err(failed(format!("column {field} mixes types"))),
            };
            table.columns.push((field, data));
        }
        Ok(table)
    }
}

/// The fields of one row, in declaration order.
fn row_cells<T: serde::Serialize>(
    row: &T,
) -> std::result::Result<Vec<(&'static str, Cell)>, String> {
    let mut out = Vec::new();
    row.serialize(RowSerializer { out: &mut out })
        .map_err(|e| e.0)?;
    Ok(out)
}

/// Why a row could not be laid out as cells.
#[derive(Debug)]
struct CellError(String);

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellError {}

impl serde::ser::Error for CellError {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        CellError(message.to_string())
    }
}

fn unsupported<T>(what: &str) -> std::result::Result<T, CellError> {
    Err(CellError(format!(
        "a table row must be a struct of plain values, not {what}"
    )))
}

/// Serialises a row struct into its named cells.
struct RowSerializer<'a> {
    out: &'a mut Vec<(&'static str, Cell)>,
}

impl serde::ser::SerializeStruct for RowSerializer<'_> {
    type Ok = ();
    type Error = CellError;
    fn serialize_field<V: serde::Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> std::result::Result<(), CellError> {
        self.out.push((key, value.serialize(CellSerializer)?));
        Ok(())
    }
    fn end(self) -> std::result::Result<(), CellError> {
        Ok(())
    }
}

/// Serialises one plain value into a cell.
struct CellSerializer;

macro_rules! unsupported_methods {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> std::result::Result<$ret, CellError> {
            unsupported(stringify!($method))
        })*
    };
}

/// Integers that always fit an `i64` cell.
macro_rules! integer_methods {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> std::result::Result<Cell, CellError> {
            Ok(Cell::I64(v.into()))
        })*
    };
}

impl serde::Serializer for RowSerializer<'_> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = serde::ser::Impossible<(), CellError>;
    type SerializeTuple = serde::ser::Impossible<(), CellError>;
    type SerializeTupleStruct = serde::ser::Impossible<(), CellError>;
    type SerializeTupleVariant = serde::ser::Impossible<(), CellError>;
    type SerializeMap = serde::ser::Impossible<(), CellError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = serde::ser::Impossible<(), CellError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> std::result::Result<Self, CellError> {
        Ok(self)
    }

    fn serialize_some<V: serde::Serialize + ?Sized>(
        self,
        _: &V,
    ) -> std::result::Result<(), CellError> {
        unsupported("an option")
    }
    fn serialize_newtype_struct<V: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &V,
    ) -> std::result::Result<(), CellError> {
        unsupported("a newtype")
    }
    fn serialize_newtype_variant<V: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> std::result::Result<(), CellError> {
        unsupported("an enum")
    }

    unsupported_methods! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

impl serde::Serializer for CellSerializer {
    type Ok = Cell;
    type Error = CellError;
    type SerializeSeq = serde::ser::Impossible<Cell, CellError>;
    type SerializeTuple = serde::ser::Impossible<Cell, CellError>;
    type SerializeTupleStruct = serde::ser::Impossible<Cell, CellError>;
    type SerializeTupleVariant = serde::ser::Impossible<Cell, CellError>;
    type SerializeMap = serde::ser::Impossible<Cell, CellError>;
    type SerializeStruct = serde::ser::Impossible<Cell, CellError>;
    type SerializeStructVariant = serde::ser::Impossible<Cell, CellError>;

    integer_methods! {
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
    }
    fn serialize_u64(self, v: u64) -> std::result::Result<Cell, CellError> {
        i64::try_from(v)
            .map(Cell::I64)
            .map_err(|_| CellError(format!("{v} does not fit an i64 column")))
    }
    fn serialize_f32(self, v: f32) -> std::result::Result<Cell, CellError> {
        Ok(Cell::F64(v.into()))
    }
    fn serialize_f64(self, v: f64) -> std::result::Result<Cell, CellError> {
        Ok(Cell::F64(v))
    }
    fn serialize_char(self, v: char) -> std::result::Result<Cell, CellError> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> std::result::Result<Cell, CellError> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_none(self) -> std::result::Result<Cell, CellError> {
        Ok(Cell::Missing)
    }
    fn serialize_some<V: serde::Serialize + ?Sized>(
        self,
        value: &V,
    ) -> std::result::Result<Cell, CellError> {
        value.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> std::result::Result<Cell, CellError> {
        Ok(Cell::Str(variant.to_string()))
    }
    fn serialize_newtype_struct<V: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &V,
    ) -> std::result::Result<Cell, CellError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<V: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> std::result::Result<Cell, CellError> {
        unsupported("an enum with data")
    }

    unsupported_methods! {
        serialize_bool(bool) -> Cell;
        serialize_bytes(&[u8]) -> Cell;
        serialize_unit() -> Cell;
        serialize_unit_struct(&'static str) -> Cell;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Side {
        #[default]
        Left,
        Right,
    }

    #[derive(Default, serde::Serialize)]
    struct Row {
        name: String,
        count: usize,
        side: Side,
        value: f64,
        maybe: Option<f64>,
    }

    const ROW_COLUMNS: &[ColumnDoc] = &[
        col("name", Unit::Label, "the row's name"),
        col("count", Unit::Count, "how many"),
        col("side", Unit::Label, "left or right"),
        col("value", Unit::Seconds, "a time"),
        std_error("maybe", "value", "standard error of value"),
    ];

    fn column_names(table: &Table) -> Vec<&str> {
        table.columns.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Columns follow the field order with their types; `None` is NaN; enums are their names.
    #[test]
    fn rows_become_typed_columns_in_declaration_order() {
        let rows = [
            Row {
                name: "a".into(),
                count: 3,
                side: Side::Right,
                value: 0.5,
                maybe: None,
            },
            Row {
                name: "b".into(),
                count: 1,
                side: Side::Left,
                value: -1.0,
                maybe: Some(2.0),
            },
        ];
        let table = Table::from_rows("t", &["name"], &rows).unwrap();
        assert_eq!(
            column_names(&table),
            ["name", "count", "side", "value", "maybe"]
        );
        match &table.columns[1].1 {
            ColumnData::I64(v) => assert_eq!(v, &[3, 1]),
            _ => panic!("count is not an integer column"),
        }
        match &table.columns[2].1 {
            ColumnData::Str(v) => assert_eq!(v, &["right", "left"]),
            _ => panic!("side is not a string column"),
        }
        match &table.columns[4].1 {
            ColumnData::F64(v) => assert!(v[0].is_nan() && v[1] == 2.0),
            _ => panic!("maybe is not a float column"),
        }
        // The same table built column by column writes the same CSV.
        let dir = tempfile::tempdir().unwrap();
        table.describe(ROW_COLUMNS).write(dir.path()).unwrap();
        let by_columns = Table::new("u", &["name"])
            .str("name", vec!["a".into(), "b".into()])
            .i64("count", vec![3, 1])
            .str("side", vec!["right".into(), "left".into()])
            .f64("value", vec![0.5, -1.0])
            .f64("maybe", vec![f64::NAN, 2.0]);
        by_columns.describe(ROW_COLUMNS).write(dir.path()).unwrap();
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(read("t.csv"), read("u.csv"));
    }

    #[test]
    fn an_empty_table_keeps_its_columns() {
        let table = Table::from_rows::<Row>("t", &[], &[]).unwrap();
        assert_eq!(
            column_names(&table),
            ["name", "count", "side", "value", "maybe"]
        );
    }

    #[test]
    fn a_row_that_is_not_a_flat_struct_is_refused() {
        #[derive(Default, serde::Serialize)]
        struct Nested {
            values: Vec<f64>,
        }
        let err = Table::from_rows("t", &[], &[Nested::default()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("table t"), "{err}");
    }

    /// Every column's description, unit and error pairing are in the parquet file, in column
    /// order; an error column takes its value's unit.
    #[test]
    fn column_descriptions_travel_in_the_parquet_metadata() {
        let dir = tempfile::tempdir().unwrap();
        Table::from_rows("t", &["name"], &[Row::default()])
            .unwrap()
            .describe(ROW_COLUMNS)
            // A later entry replaces an earlier one; one naming no column is passed over.
            .describe(&[
                col("count", Unit::Count, "how many, counted"),
                col("absent", Unit::One, "no such column"),
            ])
            .write(dir.path())
            .unwrap();
        let path = dir.path().join("t.parquet");
        let infos = read_column_infos(&path).unwrap();
        let names: Vec<&str> = infos.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["name", "count", "side", "value", "maybe"]);
        assert_eq!(infos[1].description, "how many, counted");
        assert_eq!(infos[1].unit, "count");
        assert_eq!(infos[4].unit, "s");
        assert_eq!(infos[4].error_of.as_deref(), Some("value"));
        let loaded = read_parquet(&path).unwrap();
        assert_eq!(loaded.columns, infos);
        assert_eq!(loaded.error_column_of("value"), Some("maybe"));
        assert_eq!(loaded.error_column_of("count"), None);
    }

    /// A table with a column nobody described is not written, and the error names the table
    /// and the column; so is one whose error column names a column it does not have.
    #[test]
    fn an_undescribed_column_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let err = Table::new("t", &["k"])
            .i64("k", vec![1])
            .f64("x", vec![0.5])
            .describe(&[col("k", Unit::Index, "key")])
            .write(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("table t") && err.contains("column x"), "{err}");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        let err = Table::new("t", &["k"])
            .i64("k", vec![1])
            .f64("x_error", vec![0.5])
            .describe(&[
                col("k", Unit::Index, "key"),
                std_error("x_error", "x", "error of a column the table lacks"),
            ])
            .write(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x_error") && err.contains("error of x"),
            "{err}"
        );
    }
}
