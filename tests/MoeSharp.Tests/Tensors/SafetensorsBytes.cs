using System.Buffers.Binary;
using System.Text;

namespace MoeSharp.Tests.Tensors;

/// <summary>Hand-built safetensors byte images, for feeding the reader exactly the malformation under test.</summary>
internal static class SafetensorsBytes
{
    /// <summary>Length prefix, the header text as UTF-8, then <paramref name="dataLength"/> data bytes (0, 1, 2, ...).</summary>
    public static byte[] Build(string header, int dataLength) => Build(Encoding.UTF8.GetBytes(header), dataLength);

    /// <summary>Length prefix, the raw header bytes, then <paramref name="dataLength"/> data bytes.</summary>
    public static byte[] Build(byte[] header, int dataLength, ulong? declaredHeaderLength = null)
    {
        var bytes = new byte[8 + header.Length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int i = 0; i < dataLength; i++) bytes[8 + header.Length + i] = (byte)i;
        return bytes;
    }
}

/// <summary>A read-only stream that hides its length, like a pipe or a network stream.</summary>
internal sealed class NonSeekableStream(byte[] bytes) : Stream
{
    private readonly MemoryStream _inner = new(bytes, writable: false);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    // Hand out at most 3 bytes per call so the reader's loops over short reads are exercised.
    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 3));
    public override int Read(Span<byte> buffer) => _inner.Read(buffer[..Math.Min(buffer.Length, 3)]);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
