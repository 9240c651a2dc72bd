using System.Numerics;

namespace MoeSharp.Compute.Rows;

/// <summary>
/// What a host row kernel needs to know about its row element: how a value widens to float32 and how a float32
/// rounds back, one value at a time and a block at a time. Every kernel computes in float32 between one widening and
/// one narrowing, so a new row type (FP8 on the wire, say) is one small struct implementing this, in the spirit of
/// <c>TensorPrimitives</c>' operator structs; the kernels (<see cref="HostRowKernels{TElement, TOps}"/>) are written
/// once over it and the JIT specialises them for each struct, so nothing is called through an interface at run time.
/// </summary>
/// <typeparam name="TElement">The element as stored in a row.</typeparam>
/// <remarks>
/// The block forms must give, lane by lane, the same bits as the scalar forms, so a row's result does not depend on
/// where its vector loop ends and its scalar tail begins.
/// </remarks>
internal interface IRowElement<TElement>
    where TElement : unmanaged
{
    /// <summary>Elements in one block: two float32 vectors' worth, whatever the element's size.</summary>
    static int BlockLength => 2 * Vector<float>.Count;

    /// <summary>
    /// Whether gathers (and scaled token scatters) whose output is large write it with non-temporal stores. A
    /// measured choice per row type, not a question of results (the bits are the same either way): float32 rows
    /// stream; bfloat16 rows are faster through the cache on the machines measured so far. Unscaled token scatters
    /// stream for every row type (a copy of bits).
    /// </summary>
    static abstract bool StreamsLargeOutputs { get; }

    /// <summary>The value as float32 (exact for every element type narrower than float32).</summary>
    static abstract float Widen(TElement value);

    /// <summary>The float32 rounded to the element type: to nearest, ties to even; a NaN stays a NaN.</summary>
    static abstract TElement Narrow(float value);

    /// <summary>
    /// <see cref="BlockLength"/> elements from <paramref name="source"/> on, widened: the first
    /// <c>Vector&lt;float&gt;.Count</c> in <c>Low</c>, the rest in <c>High</c>.
    /// </summary>
    static abstract (Vector<float> Low, Vector<float> High) WidenBlock(ref readonly TElement source);

    /// <summary>
    /// <paramref name="low"/> then <paramref name="high"/>, narrowed as <see cref="Narrow"/> lane by lane, stored from
    /// <paramref name="destination"/> on through <typeparamref name="TStore"/>.
    /// </summary>
    static abstract void NarrowBlock<TStore>(Vector<float> low, Vector<float> high, ref TElement destination)
        where TStore : struct, IVectorStore;
}
