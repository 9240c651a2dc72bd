namespace MoeSharp.Tests.Tensors;

/// <summary>A read-only stream that hides its length, like a pipe or a network stream.</summary>
/// <param name="bytes">What the stream delivers.</param>
/// <param name="maxRead">The most bytes one read hands out: the default 3 exercises the reader's loops over short
/// reads; megabytes of data want more.</param>
internal sealed class NonSeekableStream(byte[] bytes, int maxRead = 3) : Stream
{
    private readonly MemoryStream _inner = new(bytes, writable: false);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush() { }

    public override int Read(byte[] buffer, int offset, int count) =>
        _inner.Read(buffer, offset, Math.Min(count, maxRead));

    public override int Read(Span<byte> buffer) => _inner.Read(buffer[..Math.Min(buffer.Length, maxRead)]);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
