using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>The chunked byte walk that lets safetensors I/O handle tensors over 2 GiB.</summary>
public class TensorByteChunksTests
{
    [Fact]
    public void ChunksCoverTheStorageInOrderWithoutSplittingElements()
    {
        Tensor t = Tensor.FromArray(new long[] { 1, 2, 3, 4, 5 }, 5);
        var seen = new List<byte>();
        var sizes = new List<int>();
        long total = TensorByteChunks.Visit(
            t,
            chunk =>
            {
                sizes.Add(chunk.Length);
                seen.AddRange(chunk.ToArray());
                return chunk.Length;
            },
            maxChunkBytes: 20
        );
        Assert.Equal(40, total);
        Assert.Equal(new[] { 16, 16, 8 }, sizes);
        Assert.Equal(t.AsBytes().ToArray(), seen.ToArray());
    }

    [Fact]
    public void AShortChunkStopsTheWalk()
    {
        Tensor t = Tensor.Zeros(DType.Float32, 10);
        int calls = 0;
        long total = TensorByteChunks.Visit(t, chunk => ++calls == 2 ? 3 : chunk.Length, maxChunkBytes: 8);
        Assert.Equal(2, calls);
        Assert.Equal(11, total);
    }
}
