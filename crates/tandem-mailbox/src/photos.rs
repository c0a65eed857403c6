//! User photos as Exchange 2013 keeps them: Set-UserPhoto (upload, `-Preview`, `-Save`,
//! `-Cancel`) and Remove-UserPhoto for the admin commands, which write the mailbox store while the
//! role runs (the next GetUserPhoto serves the change), and the picture work behind them.
//!
//! An upload is checked before anything is stored: at most [`MAX_PICTURE_BYTES`], a JPEG or PNG by
//! its signature, a complete file (a JPEG must end its last scan with EOI; PNG's decoder checks
//! its chunks), no side over [`MAX_SIDE`] pixels, and a full decode. The picture is then cropped to
//! its centre square and resized once into every GetUserPhoto size up to its own (never upscaled:
//! a request above it gets the largest kept, as Exchange answers), each encoded as JPEG. Decoding
//! and resizing are CPU-heavy, so [`prepare`] runs on the blocking pool.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};
use tandem_ews_proto::ops::get_user_photo::PhotoSize;
use tandem_store::Store;

use crate::DataError;
use crate::data::photos::{self as stored, PhotoKind};

/// Largest picture accepted (bytes): a 648×648 JPEG is about 240 KB, a camera's full-size photo a
/// few MB; anything past this is refused before it is decoded.
pub const MAX_PICTURE_BYTES: usize = 20 * 1024 * 1024;
/// Largest width or height accepted (pixels), so a small file cannot claim a huge canvas.
pub const MAX_SIDE: u32 = 10_000;
/// Memory the decoder may take for one picture.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// JPEG quality of the stored sizes.
const JPEG_QUALITY: u8 = 90;

/// Why a picture is refused; each says what failed and what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PictureError {
    #[error("the file is empty; give a JPEG or PNG picture")]
    Empty,
    #[error(
        "the file is {size} bytes, more than the {max} bytes allowed; make it smaller (648×648 pixels is the largest size served)"
    )]
    TooLarge { size: usize, max: usize },
    #[error("the file is not a JPEG or PNG picture (it starts with {start}); convert it to JPEG or PNG")]
    NotJpegOrPng { start: String },
    #[error("the JPEG file is truncated (it has no end-of-image marker after its last scan); upload the complete file")]
    TruncatedJpeg,
    #[error("the {format} picture is {width}×{height} pixels, more than {} on a side; scale it down", MAX_SIDE)]
    TooManyPixels { format: &'static str, width: u32, height: u32 },
    #[error("the {format} file cannot be decoded ({reason}); check that it is a complete, valid picture")]
    Undecodable { format: &'static str, reason: String },
    #[error("the picture could not be encoded as JPEG ({0})")]
    Encode(String),
    #[error("the picture work stopped before it finished")]
    Interrupted,
}

/// A checked picture in every size it is served in.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    /// (pixels, JPEG) from the smallest size up.
    pub sizes: Vec<(u32, Vec<u8>)>,
    /// The ETag every size is served with (from the picture's bytes).
    pub etag: String,
}

/// Checks, decodes and resizes a picture on the blocking pool (never on the async workers).
pub async fn prepare(bytes: Vec<u8>) -> Result<Prepared, PictureError> {
    tokio::task::spawn_blocking(move || prepare_now(&bytes)).await.map_err(|_| PictureError::Interrupted)?
}

/// [`prepare`]'s work, on the calling thread.
pub fn prepare_now(bytes: &[u8]) -> Result<Prepared, PictureError> {
    if bytes.is_empty() {
        return Err(PictureError::Empty);
    }
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(PictureError::TooLarge { size: bytes.len(), max: MAX_PICTURE_BYTES });
    }
    let (format, name) = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        if !jpeg_is_complete(bytes) {
            return Err(PictureError::TruncatedJpeg);
        }
        (ImageFormat::Jpeg, "JPEG")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        (ImageFormat::Png, "PNG")
    } else {
        return Err(PictureError::NotJpegOrPng { start: describe_start(bytes) });
    };
    let undecodable = |e: image::ImageError| PictureError::Undecodable { format: name, reason: e.to_string() };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| limit_or(e, name))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PictureError::TooManyPixels { format: name, width, height });
    }
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| limit_or(e, name))?;
    picture.apply_orientation(orientation);
    let sizes = resize_all(&picture)?;
    let etag = hex::encode(&Sha256::digest(bytes)[..12]);
    Ok(Prepared { format: name, width: picture.width(), height: picture.height(), sizes, etag })
}

/// A limit error worded as one (the decoder reports dimensions past the limits as such).
fn limit_or(e: image::ImageError, name: &'static str) -> PictureError {
    match e {
        image::ImageError::Limits(l) => PictureError::Undecodable {
            format: name,
            reason: format!("{l}; at most {MAX_SIDE}×{MAX_SIDE} pixels are accepted"),
        },
        other => PictureError::Undecodable { format: name, reason: other.to_string() },
    }
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. In entropy-coded data a
/// 0xFF byte is always followed by 0x00 or a restart marker, so FF D9 after the last start of
/// scan (FF DA) is the end of the image; a file cut short has none.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        None => false,
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
    }
}

/// The first bytes of a refused file, as text when they are printable, else in hex.
fn describe_start(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(8)];
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("\"{}\"", String::from_utf8_lossy(head))
    } else {
        head.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
    }
}

/// The picture's centre square in every size up to its own, each as JPEG. Transparent pixels of
/// a PNG are put on white (JPEG has no alpha). A picture smaller than the smallest size is kept
/// at its own size.
fn resize_all(picture: &DynamicImage) -> Result<Vec<(u32, Vec<u8>)>, PictureError> {
    let side = picture.width().min(picture.height());
    let x = (picture.width() - side) / 2;
    let y = (picture.height() - side) / 2;
    let square = on_white(&picture.crop_imm(x, y, side, side));
    let mut wanted: Vec<u32> = PhotoSize::ALL.iter().map(|s| s.pixels()).filter(|p| *p <= side).collect();
    if wanted.is_empty() {
        wanted.push(side);
    }
    // The largest from the original, the others from it: one pass over a big picture. Resizing
    // goes through DynamicImage, whose code is compiled (and optimised) in the image crate.
    let largest = wanted.last().copied().unwrap_or(side);
    let square = DynamicImage::ImageRgb8(square);
    let filter = image::imageops::FilterType::Lanczos3;
    let base = if largest == side { square } else { square.resize_exact(largest, largest, filter) };
    let mut out = Vec::with_capacity(wanted.len());
    for p in wanted {
        let img = if p == largest { base.to_rgb8() } else { base.resize_exact(p, p, filter).to_rgb8() };
        out.push((p, jpeg(&img)?));
    }
    Ok(out)
}

fn on_white(picture: &DynamicImage) -> image::RgbImage {
    if !picture.color().has_alpha() {
        return picture.to_rgb8();
    }
    let rgba = picture.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let mix = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([mix(r), mix(g), mix(b)])
    })
}

fn jpeg(img: &image::RgbImage) -> Result<Vec<u8>, PictureError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(img)
        .map_err(|e| PictureError::Encode(e.to_string()))?;
    Ok(out)
}

/// What Get-UserPhoto shows of one of a mailbox's photos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoInfo {
    pub etag: String,
    pub changed_at: i64,
    /// The sizes kept, in pixels, smallest first.
    pub sizes: Vec<u32>,
}

/// Set-UserPhoto -PictureData (with `preview`, -Preview): stores the prepared picture as the
/// mailbox's photo, or as its preview, which only its owner is served until it is saved.
pub async fn set_user_photo(store: &Store, mailbox: &str, picture: &Prepared, preview: bool) -> Result<(), DataError> {
    let kind = if preview { PhotoKind::Preview } else { PhotoKind::Current };
    stored::put_photo(store, mailbox, kind, &picture.etag, &picture.sizes).await?;
    if !preview {
        // A direct upload replaces any preview, as -PictureData without -Preview saves at once.
        stored::remove_photo(store, mailbox, PhotoKind::Preview).await?;
    }
    Ok(())
}

/// Set-UserPhoto -Save: the preview becomes the photo; false when there is no preview.
pub async fn save_preview(store: &Store, mailbox: &str) -> Result<bool, DataError> {
    stored::save_preview(store, mailbox).await
}

/// Set-UserPhoto -Cancel: drops the preview; false when there is none.
pub async fn cancel_preview(store: &Store, mailbox: &str) -> Result<bool, DataError> {
    stored::remove_photo(store, mailbox, PhotoKind::Preview).await
}

/// Remove-UserPhoto: drops the photo (the preview stays, as in Exchange); false when there was none.
pub async fn remove_user_photo(store: &Store, mailbox: &str) -> Result<bool, DataError> {
    stored::remove_photo(store, mailbox, PhotoKind::Current).await
}

/// Get-UserPhoto (`preview` for -Preview): the photo's tag, time and sizes, if it has one.
pub async fn user_photo(store: &Store, mailbox: &str, preview: bool) -> Result<Option<PhotoInfo>, DataError> {
    let kind = if preview { PhotoKind::Preview } else { PhotoKind::Current };
    let Some(p) = stored::photo(store, mailbox, kind, u32::MAX, false).await? else { return Ok(None) };
    let sizes = stored::photo_sizes(store, mailbox, kind).await?;
    Ok(Some(PhotoInfo { etag: p.etag, changed_at: p.changed_at, sizes }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A test picture: a gradient, so resizing has something to do.
    pub(crate) fn picture(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn dims(jpeg: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn every_size_up_to_the_pictures_own_and_none_above() {
        let p = prepare_now(&picture(800, 600, ImageFormat::Png)).unwrap();
        assert_eq!((p.format, p.width, p.height), ("PNG", 800, 600));
        let kept: Vec<u32> = p.sizes.iter().map(|(s, _)| *s).collect();
        assert_eq!(kept, vec![48, 64, 96, 120, 240, 360, 432, 504]);
        for (s, jpeg) in &p.sizes {
            assert_eq!(dims(jpeg), (*s, *s));
        }
        let big = prepare_now(&picture(700, 700, ImageFormat::Jpeg)).unwrap();
        assert_eq!(big.sizes.last().map(|(s, _)| *s), Some(648));
        assert_eq!(big.sizes.len(), 9);
        let tiny = prepare_now(&picture(30, 40, ImageFormat::Png)).unwrap();
        assert_eq!(tiny.sizes.len(), 1);
        assert_eq!(dims(&tiny.sizes[0].1), (30, 30));
    }

    #[test]
    fn bad_pictures_are_refused_with_what_failed() {
        assert_eq!(prepare_now(b"").unwrap_err(), PictureError::Empty);
        let text = prepare_now(b"hello, this is text").unwrap_err();
        assert_eq!(text, PictureError::NotJpegOrPng { start: "\"hello, t\"".into() });
        assert!(text.to_string().contains("not a JPEG or PNG"));
        let jpeg = picture(200, 200, ImageFormat::Jpeg);
        assert_eq!(prepare_now(&jpeg[..jpeg.len() / 2]).unwrap_err(), PictureError::TruncatedJpeg);
        let png = picture(200, 200, ImageFormat::Png);
        assert!(matches!(prepare_now(&png[..png.len() / 2]), Err(PictureError::Undecodable { format: "PNG", .. })));
        let mut huge = vec![0xFF, 0xD8, 0xFF];
        huge.resize(MAX_PICTURE_BYTES + 1, 0);
        assert!(matches!(prepare_now(&huge), Err(PictureError::TooLarge { .. })));
        // A PNG header that claims a canvas past the limit is refused before any pixel is read.
        let mut wide = png.clone();
        wide[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        assert!(prepare_now(&wide).is_err());
    }
}
