using System.Numerics;
using System.Runtime.CompilerServices;

namespace MoeSharp.Compute.Rows;

/// <summary>float32 rows: widening and narrowing are the identity, a block is two float32 vectors.</summary>
internal readonly struct Float32Row : IRowElement<float>
{
    /// <inheritdoc />
    public static bool StreamsLargeOutputs => true;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(float value) => value;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Narrow(float value) => value;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector<float> Low, Vector<float> High) WidenBlock(ref readonly float source)
    {
        ref float at = ref Unsafe.AsRef(in source);
        return (Vector.LoadUnsafe(ref at), Vector.LoadUnsafe(ref at, (nuint)Vector<float>.Count));
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void NarrowBlock<TStore>(Vector<float> low, Vector<float> high, ref float destination)
        where TStore : struct, IVectorStore
    {
        TStore.Store(low, ref destination);
        TStore.Store(high, ref Unsafe.Add(ref destination, Vector<float>.Count));
    }
}
