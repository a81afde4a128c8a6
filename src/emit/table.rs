//! Result tables: typed columns → polars DataFrame → CSV and parquet.
//!
//! Columns keep the order they are declared in; rows are sorted by the declared key columns;
//! floats are written in scientific notation with 10 significant digits, so a `git diff` of a CSV
//! shows only real changes. The parquet file records the key columns in its file metadata
//! ([`KEYS_METADATA`]), which is how `symbreak diff` joins the rows of two runs.

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

/// Parquet file-metadata key under which a table's key columns are stored (a JSON list).
pub const KEYS_METADATA: &str = "symbreak.keys";

/// Parquet file-metadata key of the columns that measure the machine (wall-clock times and
/// their ratios): they differ between identical computations, so `symbreak diff` leaves them
/// out unless asked (a JSON list).
pub const WALL_CLOCK_METADATA: &str = "symbreak.wall_clock";

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
}

impl Table {
    pub fn new(name: impl Into<String>, keys: &[&str]) -> Self {
        Self {
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            wall_clock: Vec::new(),
            columns: Vec::new(),
        }
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
}

/// Reads `<name>.parquet` (typed, full precision) with its declared keys.
pub fn read_parquet(path: &Path) -> Result<LoadedTable> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut reader = ParquetReader::new(file);
    let metadata = reader
        .get_metadata()
        .map_err(|e| Error::unreadable("parquet table", path, e))?
        .clone();
    let list = |key: &str| {
        metadata
            .key_value_metadata()
            .as_ref()
            .and_then(|pairs| pairs.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.as_deref())
            .and_then(|json| serde_json::from_str::<Vec<String>>(json).ok())
    };
    let (keys, wall_clock) = (list(KEYS_METADATA), list(WALL_CLOCK_METADATA));
    let frame = reader
        .finish()
        .map_err(|e| Error::unreadable("parquet table", path, e))?;
    Ok(LoadedTable {
        frame,
        keys,
        wall_clock: wall_clock.unwrap_or_default(),
    })
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
        table.write(dir.path()).unwrap();
        let by_columns = Table::new("u", &["name"])
            .str("name", vec!["a".into(), "b".into()])
            .i64("count", vec![3, 1])
            .str("side", vec!["right".into(), "left".into()])
            .f64("value", vec![0.5, -1.0])
            .f64("maybe", vec![f64::NAN, 2.0]);
        by_columns.write(dir.path()).unwrap();
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
}
