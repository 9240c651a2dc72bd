using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MoeSharp.Compute.Rows;

/// <summary>
/// Whole-span conversions of one row element type (<typeparamref name="TOps"/>), a block at a time with the same
/// scalar operations for the tail, so a value's bits do not depend on where it sits in the span.
/// </summary>
/// <typeparam name="TElement">The row element.</typeparam>
/// <typeparam name="TOps">Its widening and narrowing.</typeparam>
internal static class RowSpans<TElement, TOps>
    where TElement : unmanaged
    where TOps : struct, IRowElement<TElement>
{
    /// <summary><c>destination[i] = widen(source[i])</c>.</summary>
    public static void Widen(ReadOnlySpan<TElement> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException("shorter than source", nameof(destination));
        int block = IRowElement<TElement>.BlockLength,
            half = Vector<float>.Count,
            j = 0;
        ref TElement from = ref MemoryMarshal.GetReference(source);
        ref float to = ref MemoryMarshal.GetReference(destination);
        for (; j <= source.Length - block; j += block)
        {
            var (low, high) = TOps.WidenBlock(in Unsafe.Add(ref from, j));
            low.StoreUnsafe(ref to, (nuint)j);
            high.StoreUnsafe(ref to, (nuint)(j + half));
        }
        for (; j < source.Length; j++)
            destination[j] = TOps.Widen(source[j]);
    }

    /// <summary><c>destination[i] = narrow(source[i])</c>, rounded to nearest even.</summary>
    public static void Narrow(ReadOnlySpan<float> source, Span<TElement> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException("shorter than source", nameof(destination));
        int block = IRowElement<TElement>.BlockLength,
            half = Vector<float>.Count,
            j = 0;
        ref float from = ref MemoryMarshal.GetReference(source);
        ref TElement to = ref MemoryMarshal.GetReference(destination);
        for (; j <= source.Length - block; j += block)
        {
            Vector<float> low = Vector.LoadUnsafe(ref from, (nuint)j),
                high = Vector.LoadUnsafe(ref from, (nuint)(j + half));
            TOps.NarrowBlock<PlainStore>(low, high, ref Unsafe.Add(ref to, j));
        }
        for (; j < source.Length; j++)
            destination[j] = TOps.Narrow(source[j]);
    }

    /// <summary><c>destination[i] = narrow(widen(source[i]) · scale)</c>: one float32 product, rounded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale(ReadOnlySpan<TElement> source, float scale, Span<TElement> destination)
    {
        if (destination.Length < source.Length)
            throw new ArgumentException("shorter than source", nameof(destination));
        int block = IRowElement<TElement>.BlockLength,
            j = 0;
        ref TElement from = ref MemoryMarshal.GetReference(source);
        ref TElement to = ref MemoryMarshal.GetReference(destination);
        var s = new Vector<float>(scale);
        for (; j <= source.Length - block; j += block)
        {
            var (low, high) = TOps.WidenBlock(in Unsafe.Add(ref from, j));
            // One rounded product per lane; nothing to fuse it with.
            TOps.NarrowBlock<PlainStore>(low * s, high * s, ref Unsafe.Add(ref to, j));
        }
        for (; j < source.Length; j++)
            destination[j] = TOps.Narrow(TOps.Widen(source[j]) * scale);
    }
}
