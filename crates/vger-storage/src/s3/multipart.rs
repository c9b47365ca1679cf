//! Multipart upload for objects above the single-PUT threshold: parts of
//! [`PART_SIZE`] each with its own `Content-MD5`, completed in order, and
//! aborted on any failure so that no orphaned parts are billed.

use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload};
use ureq::http::Method;

use super::request::error_from_reply;
use super::{content_md5, S3Storage};
use crate::StorageError;

/// Size of every part but the last (S3 allows 5 MiB to 5 GiB, at most 10,000 parts).
pub const PART_SIZE: usize = 16 << 20;

pub(super) fn upload(s3: &S3Storage, key: &str, data: &[u8]) -> Result<(), StorageError> {
    let object = s3.object(key);
    let action = s3.bucket.create_multipart_upload(Some(&s3.credentials), &object);
    let reply = s3.send(s3.exchange(action, Method::POST, Vec::new(), &[]))?;
    if !reply.is_success() {
        return Err(error_from_reply(&reply, "start multipart upload of", key));
    }
    let created = CreateMultipartUpload::parse_response(&String::from_utf8_lossy(&reply.body)).map_err(|e| {
        StorageError::Transient { detail: format!("S3 multipart upload of `{key}`: unreadable reply: {e}") }
    })?;
    let upload_id = created.upload_id();
    let result = upload_parts(s3, key, &object, upload_id, data);
    if result.is_err() {
        // Best effort: the error that matters is the upload's.
        let action = s3.bucket.abort_multipart_upload(Some(&s3.credentials), &object, upload_id);
        let _ = s3.send(s3.exchange(action, Method::DELETE, Vec::new(), &[]));
    }
    result
}

fn upload_parts(s3: &S3Storage, key: &str, object: &str, upload_id: &str, data: &[u8]) -> Result<(), StorageError> {
    let mut etags = Vec::new();
    for (index, part) in data.chunks(PART_SIZE).enumerate() {
        let number = u16::try_from(index + 1).map_err(|_| StorageError::QuotaExceeded {
            detail: format!("`{key}` needs more than 10,000 parts of {PART_SIZE} bytes"),
        })?;
        let action = s3.bucket.upload_part(Some(&s3.credentials), object, number, upload_id);
        let reply = s3.send(s3.exchange(action, Method::PUT, vec![("content-md5", content_md5(part))], part))?;
        if !reply.is_success() {
            return Err(error_from_reply(&reply, "upload part of", key));
        }
        let etag = reply.header("etag").ok_or_else(|| StorageError::Transient {
            detail: format!("S3 upload of part {number} of `{key}`: reply without an ETag"),
        })?;
        etags.push(etag.to_owned());
    }
    let complete = CompleteMultipartUpload::new(
        &s3.bucket,
        Some(&s3.credentials),
        object,
        upload_id,
        etags.iter().map(String::as_str),
    );
    let url = rusty_s3::S3Action::sign(&complete, super::SIGNATURE_LIFETIME);
    let body = complete.body();
    let exchange = crate::http::Exchange {
        method: Method::POST,
        url: url.to_string(),
        headers: Vec::new(),
        body: body.as_bytes(),
        expect_bytes: Some(64 << 20),
        max_reply: crate::http::SMALL_REPLY,
    };
    let reply = s3.send(exchange)?;
    // CompleteMultipartUpload may fail after sending 200: the error is in the body.
    if reply.is_success() && !reply.body.windows(7).any(|w| w == b"<Error>") {
        Ok(())
    } else if reply.is_success() {
        Err(StorageError::Transient {
            detail: format!(
                "S3 completing the upload of `{key}` failed: {}",
                super::request::error_code(&reply.body).1
            ),
        })
    } else {
        Err(error_from_reply(&reply, "complete multipart upload of", key))
    }
}
