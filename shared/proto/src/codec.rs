//! The codec of every generated `keyplan.v1` client and server (set in `build.rs` with
//! `codec_path`): prost's encoding, but a message that cannot be decoded is reported as
//! `INVALID_ARGUMENT`, the sender's error, instead of tonic-prost's `INTERNAL`.
//!
//! Bytes that are not a valid protobuf encoding of the request (an unknown wire type, a
//! truncated varint, invalid UTF-8 in a string field, a length beyond the body...) say
//! nothing about the server's health: the client must fix what it sends. Framing errors
//! below the message (an invalid compressed flag, a body cut short inside a frame) stay as
//! tonic reports them, since the gRPC protocol specifies `INTERNAL` for those.
//!
//! The generated clients share the codec (tonic-prost-build has one `codec_path`): a Rust
//! client that receives an undecodable response sees `INVALID_ARGUMENT` with the same
//! "not valid protobuf" message, i.e. the peer sent a malformed message.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// prost's codec with undecodable messages refused as `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct KeyplanCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for KeyplanCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for KeyplanCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = KeyplanDecoder<U>;

    fn encoder(&mut self) -> ProstEncoder<T> {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> KeyplanDecoder<U> {
        KeyplanDecoder { _type: PhantomData }
    }
}

/// Decodes a `U`, refusing malformed bytes as `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct KeyplanDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for KeyplanDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(undecodable)
    }
}

/// The status of a message that is not valid protobuf. prost's messages name the field path
/// and the problem (`ExecuteRequest.tenant: invalid string value: data is not UTF-8
/// encoded`), never the bytes; they are short, and cut anyway.
pub fn undecodable(error: prost::DecodeError) -> Status {
    let detail: String = error.to_string().chars().take(300).collect();
    Status::invalid_argument(format!(
        "the message is not valid protobuf for this method ({detail}); check the client's \
         encoding and that it uses this API's .proto files"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_error_is_invalid_argument() {
        let Err(error) = crate::pb::ExecuteRequest::decode(&[0x0e_u8, 0x01][..]) else {
            panic!("0e 01 is not a valid ExecuteRequest");
        };
        let status = undecodable(error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("wire type"),
            "{}",
            status.message()
        );
    }
}
