//! Protocol state that lives longer than one packet. (Implementation in progress.)
