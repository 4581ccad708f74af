//! Topic names and filters. (Implementation in progress.)
