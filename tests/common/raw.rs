//! Raw message bytes over gRPC: any RPC by its path, with any body, for tests that walk the
//! whole API (the bad-input matrix, the authorization matrix).

use std::time::Duration;

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Status;

/// A codec that sends and receives raw message bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Calls the RPC at `path` (`/package.Service/Method`) with `body` as the request message and,
/// if given, `authorization: Bearer <token>`. Returns the response messages: every message of
/// a unary answer or a stream that ends, and for a stream that stays open, those that arrive
/// until `quiet` passes without one. A refusal is the call's status.
pub async fn call(
    channel: Channel,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
    quiet: Duration,
) -> Result<Vec<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery = path.parse().expect("an RPC path");
    let mut request = tonic::Request::new(body);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ASCII token");
        request.metadata_mut().insert("authorization", value);
    }
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        // A unary answer is, on the wire, a stream of one message.
        let mut stream = grpc
            .server_streaming(request, path, RawCodec)
            .await?
            .into_inner();
        let mut messages = Vec::new();
        loop {
            match tokio::time::timeout(quiet, stream.message()).await {
                Ok(Ok(Some(message))) => messages.push(message),
                Ok(Ok(None)) | Err(_) => return Ok(messages),
                Ok(Err(status)) => return Err(status),
            }
        }
    })
    .await;
    answer.unwrap_or_else(|_| Err(Status::deadline_exceeded("the test gave up after 20 s")))
}
