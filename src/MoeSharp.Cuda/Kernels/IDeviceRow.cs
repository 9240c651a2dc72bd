using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// A row's 32-bit words as the bandwidth kernels move them: each word holds <see cref="ValuesPerWord"/> values (one
/// float32, or two bfloat16 with element 2i in the low half). Kernels are generic over a struct implementing this and
/// call it on <c>default(TRow)</c>, as they do <see cref="IStrictFloat"/>: ILGPU compiles one kernel per struct, with
/// the calls inlined, so a new row type is one struct and no new kernel.
/// </summary>
internal interface IDeviceWord
{
    /// <summary>Values in one word: 1 or 2. A constant per struct, so the branches on it fold away.</summary>
    int ValuesPerWord();

    /// <summary>The float32 value of the word's first (low) value, exactly.</summary>
    float Low(uint word);

    /// <summary>
    /// The float32 value of the word's second (high) value; unused when <see cref="ValuesPerWord"/> is 1.
    /// </summary>
    float High(uint word);

    /// <summary>
    /// Rounds <paramref name="low"/> (and <paramref name="high"/> when a word holds two) into one word.
    /// </summary>
    uint Pack(float low, float high);
}

/// <summary>The values of a row one at a time (any row length), stored as <typeparamref name="TElement"/>.</summary>
/// <typeparam name="TElement">The storage of one value: <c>float</c>, or the <c>ushort</c> bit pattern of a
/// bfloat16.</typeparam>
internal interface IDeviceRow<TElement> : IDeviceWord
    where TElement : unmanaged
{
    /// <summary>The value as float32, exactly.</summary>
    float Widen(TElement value);

    /// <summary>The float32 rounded to the row type: to nearest, ties to even; a NaN stays a NaN.</summary>
    TElement Narrow(float value);
}

/// <summary>float32 rows: one value per word, widening and narrowing the identity.</summary>
internal readonly struct Float32DeviceRow : IDeviceRow<float>
{
    /// <inheritdoc />
    public int ValuesPerWord() => 1;

    /// <inheritdoc />
    public float Low(uint word) => Interop.IntAsFloat(word);

    /// <inheritdoc />
    public float High(uint word) => 0f;

    /// <inheritdoc />
    public uint Pack(float low, float high) => Interop.FloatAsInt(low);

    /// <inheritdoc />
    public float Widen(float value) => value;

    /// <inheritdoc />
    public float Narrow(float value) => value;
}

/// <summary>
/// bfloat16 rows as their 16-bit patterns: widened exactly, rounded as <c>BFloat16.FromSingle</c> (nearest even, a NaN
/// kept a quiet NaN; <see cref="BFloat16KernelBodies.Round"/>), two values per word.
/// </summary>
internal readonly struct BFloat16DeviceRow : IDeviceRow<ushort>
{
    /// <inheritdoc />
    public int ValuesPerWord() => 2;

    /// <inheritdoc />
    public float Low(uint word) => BFloat16KernelBodies.Low(word);

    /// <inheritdoc />
    public float High(uint word) => BFloat16KernelBodies.High(word);

    /// <inheritdoc />
    public uint Pack(float low, float high) =>
        BFloat16KernelBodies.Round(low) | (BFloat16KernelBodies.Round(high) << 16);

    /// <inheritdoc />
    public float Widen(ushort value) => BFloat16KernelBodies.Low(value);

    /// <inheritdoc />
    public ushort Narrow(float value) => (ushort)BFloat16KernelBodies.Round(value);
}
