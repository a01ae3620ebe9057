//! Dockerfile builds (placeholder).
