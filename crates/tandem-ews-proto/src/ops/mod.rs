//! EWS operations, one module per operation.
