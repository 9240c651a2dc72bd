using System.Runtime.InteropServices;

namespace MoeSharp.Tensors;

/// <summary>
/// Visits a byte chunk of a tensor's storage; returns how many bytes it handled (fewer stops the walk).
/// </summary>
internal delegate int ByteChunkVisitor(Span<byte> chunk);

/// <summary>
/// Walks a tensor's storage as byte spans of at most 1 GiB. <see cref="Tensor.AsBytes"/> cannot describe a
/// tensor over 2 GiB (a span's length is an <see cref="int"/>), and expert weight stacks can be that large.
/// </summary>
internal static class TensorByteChunks
{
    /// <summary>
    /// Chunk size limit in production: far below 2 GiB, large enough that per-chunk overhead vanishes.
    /// </summary>
    public const int DefaultMaxChunkBytes = 1 << 30;

    /// <summary>
    /// Calls <paramref name="visit"/> on successive chunks; returns the total bytes it reported handling.
    /// </summary>
    /// <param name="tensor">The tensor whose storage to walk.</param>
    /// <param name="visit">Called per chunk; chunks never split an element.</param>
    /// <param name="maxChunkBytes">Chunk size limit (tests pass small values to exercise the chunk boundaries).</param>
    public static long Visit(Tensor tensor, ByteChunkVisitor visit, int maxChunkBytes = DefaultMaxChunkBytes) =>
        tensor.DType switch
        {
            DType.Float32 => Visit(tensor.AsSpan<float>(), visit, maxChunkBytes),
            DType.BFloat16 => Visit(tensor.AsSpan<BFloat16>(), visit, maxChunkBytes),
            DType.Int32 => Visit(tensor.AsSpan<int>(), visit, maxChunkBytes),
            DType.Int64 => Visit(tensor.AsSpan<long>(), visit, maxChunkBytes),
            _ => throw new InvalidOperationException($"unknown dtype {tensor.DType}"),
        };

    private static long Visit<T>(Span<T> elements, ByteChunkVisitor visit, int maxChunkBytes)
        where T : unmanaged
    {
        int perChunk = Math.Max(1, maxChunkBytes / System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        long done = 0;
        for (int start = 0; start < elements.Length; start += perChunk)
        {
            Span<byte> chunk = MemoryMarshal.AsBytes(
                elements.Slice(start, Math.Min(perChunk, elements.Length - start))
            );
            int handled = visit(chunk);
            done += handled;
            if (handled < chunk.Length)
                break;
        }
        return done;
    }
}
