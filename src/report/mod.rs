//! The ways a run's results are written: one typed document (the JSON
//! report, and what every other form is made from), a human table, JUnit
//! XML for CI systems, and the side-by-side comparison of runs from
//! several subnets.

pub mod compare;
pub mod document;
pub mod junit;
pub mod text;
