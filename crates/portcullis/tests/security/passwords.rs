//! Tests of this class are added here.
