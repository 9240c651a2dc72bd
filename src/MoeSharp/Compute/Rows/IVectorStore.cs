using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoeSharp.Compute.Rows;

/// <summary>
/// How a narrowed block reaches memory: a plain store, or a non-temporal one for outputs too large to be worth
/// caching. A type parameter rather than a flag, so each kernel loop is compiled with its store inlined.
/// </summary>
internal interface IVectorStore
{
    /// <summary>Stores <paramref name="value"/> at <paramref name="destination"/>.</summary>
    static abstract void Store<T>(Vector<T> value, ref T destination)
        where T : unmanaged;
}

/// <summary>An ordinary (unaligned, cached) vector store.</summary>
internal readonly struct PlainStore : IVectorStore
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<T>(Vector<T> value, ref T destination)
        where T : unmanaged => value.StoreUnsafe(ref destination);
}

/// <summary>
/// A 32-byte non-temporal store (<c>vmovntps</c>): the destination must be 32-byte aligned and pinned, and
/// <see cref="Vector{T}"/> 32 bytes wide (<see cref="IsSupported"/>). Weakly ordered: fence before other threads read.
/// </summary>
internal readonly unsafe struct NonTemporalStore : IVectorStore
{
    /// <summary>
    /// Whether this machine has the instruction and <see cref="Vector{T}"/> is the 32 bytes it stores.
    /// </summary>
    public static bool IsSupported => Avx.IsSupported && Vector<byte>.Count == 32;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<T>(Vector<T> value, ref T destination)
        where T : unmanaged =>
        Avx.StoreAlignedNonTemporal((byte*)Unsafe.AsPointer(ref destination), value.AsVector256().AsByte());
}
