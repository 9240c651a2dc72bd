using System.Text;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>
/// Reading from a stream that cannot tell its length (a pipe): memory follows the bytes that arrive, not the sizes the
/// header claims, and what does arrive is read exactly.
/// </summary>
public sealed class SafetensorsStreamReadTests
{
    private const string Source = "pipe";

    /// <summary>Reads through a non-seekable stream; returns the error and the bytes this thread allocated.</summary>
    private static (InvalidDataException Error, long Allocated) ReadShort(byte[] bytes, int maxRead)
    {
        var stream = new NonSeekableStream(bytes, maxRead);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => SafetensorsFile.ReadFrom(stream, Source));
        return (error, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_short_stream_claiming_a_huge_tensor_fails_before_allocating_it()
    {
        // 16 data bytes of a 1 GiB tensor: the whole GiB was allocated before the first byte was read.
        string header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[268435456],\"data_offsets\":[0,1073741824]}}";
        var (error, allocated) = ReadShort(SafetensorsBytes.Build(header, 16), maxRead: 3);
        Assert.Equal(
            $"{Source}: tensor 'w': data_offsets [0, 1073741824] go beyond the data block, which ends after 16 bytes",
            error.Message
        );
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes for 16 that arrived");
    }

    [Fact]
    public void A_stream_that_ends_partway_costs_about_twice_what_arrived()
    {
        // 6 MiB of a 32 MiB tensor.
        const int arrived = 6 << 20;
        string header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[8388608],\"data_offsets\":[0,33554432]}}";
        var (error, allocated) = ReadShort(SafetensorsBytes.Build(header, arrived), maxRead: 1 << 16);
        Assert.EndsWith($"which ends after {arrived} bytes", error.Message);
        Assert.True(allocated < 2.5 * arrived, $"allocated {allocated} bytes for {arrived} that arrived");
    }

    [Fact]
    public void A_short_stream_claiming_a_huge_header_fails_before_allocating_it()
    {
        // A length field at the 100 MB limit and 10 header bytes: the 100 MB were allocated up front.
        byte[] bytes = SafetensorsBytes.Build(
            Encoding.UTF8.GetBytes("{}        "),
            0,
            declaredHeaderLength: 100_000_000
        );
        var (error, allocated) = ReadShort(bytes, maxRead: 3);
        Assert.Equal(
            $"{Source}: header length 100000000 goes beyond the end of the file, which has 18 bytes",
            error.Message
        );
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes for 18 that arrived");
    }

    [Theory]
    [InlineData(3)]
    [InlineData(65521)] // a prime: reads straddle the staging pieces' boundaries
    public void Tensors_larger_than_a_staging_piece_arrive_intact(int maxRead)
    {
        var random = new Random(5);
        // 300000 floats (1.2 MB): staged in several pieces, half of it drained into the tensor, the rest read after.
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new(
                "big",
                Tensor.FromArray(Enumerable.Range(0, 300_000).Select(_ => random.NextSingle()).ToArray(), 600, 500)
            ),
            new("small", Tensor.FromArray(new long[] { 1, -2, 3 }, 3)),
            new("odd", Tensor.FromArray(Enumerable.Range(0, 33_333).Select(i => (float)i).ToArray(), 33_333)),
        };
        var buffer = new MemoryStream();
        SafetensorsFile.WriteTo(buffer, tensors);
        SafetensorsContent back = SafetensorsFile.ReadFrom(new NonSeekableStream(buffer.ToArray(), maxRead), Source);
        foreach (var (name, tensor) in tensors)
            Assert.True(back[name].BitwiseEquals(tensor), name);
    }

    [Theory]
    [InlineData(0, 7, 5)]
    [InlineData(1, 7, 5)]
    [InlineData(1000, 7, 13)]
    [InlineData(1000, 1000, 1000)]
    [InlineData(1000, 4096, 1)]
    public void Arrived_bytes_drain_in_order(int count, int firstPiece, int drainChunk)
    {
        byte[] data = Enumerable.Range(0, count + 10).Select(i => (byte)(i * 7)).ToArray();
        var stream = new NonSeekableStream(data, maxRead: 11);
        ArrivedBytes arrived = ArrivedBytes.Read(stream, count, firstPiece);
        Assert.Equal(count, arrived.Length);
        var drained = new List<byte>();
        var chunk = new byte[drainChunk];
        int moved;
        while ((moved = arrived.Drain(chunk)) > 0)
            drained.AddRange(chunk.Take(moved));
        Assert.Equal(data.Take(count), drained);
        Assert.Equal(0, arrived.Length);
        // The stream is left just past the bytes asked for.
        Assert.Equal(data[count], (byte)stream.ReadByte());
    }

    [Fact]
    public void Arrived_bytes_stop_at_the_end_of_the_stream()
    {
        byte[] data = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
        ArrivedBytes arrived = ArrivedBytes.Read(new NonSeekableStream(data, maxRead: 9), 1 << 20, firstPieceBytes: 8);
        Assert.Equal(100, arrived.Length);
        Assert.Equal(data, arrived.ToArray());
    }
}
