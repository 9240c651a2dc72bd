using ILGPU;
using MoeSharp.Quantization;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The FP8 wire-row kernels (<see cref="Fp8WireRows"/>'s layout), bitwise <see cref="Fp8RowQuantizer"/>'s: the block
/// maximum and the scale are integer operations on float32 bit patterns (<see cref="Fp8RowQuantizer.BlockScaleBits"/>),
/// the code is <see cref="Float8E4M3.Encode"/> of the scaled value, and the two multiplications by a power of two are
/// taken in float64, where they are exact, and rounded once to float32 (the correctly rounded float32 product, as the
/// host's; no add follows, so nothing can be contracted). Non-finite values are handled on their bits, so a GPU's
/// canonical NaN never changes a code or a dequantised NaN.
/// </summary>
internal static class Fp8RowKernelBodies
{
    private const int BlockColumns = Fp8RowQuantizer.BlockSize;

    /// <summary>
    /// One thread per (row, 128-column block): the block's largest finite magnitude, its scale, then its codes packed
    /// four to a word (pad bytes past D zero) and the scale's bits after the row's code words.
    /// </summary>
    /// <param name="index">row · blocksPerRow + block.</param>
    /// <param name="rows"><c>[R, D]</c> values.</param>
    /// <param name="dim">D.</param>
    /// <param name="wire"><c>[R, WordsPerRow(D)]</c> int32.</param>
    public static void Quantize<TElement, TRow>(Index1D index, ArrayView<TElement> rows, int dim, ArrayView<int> wire)
        where TElement : unmanaged
        where TRow : struct, IDeviceRow<TElement>
    {
        int blocks = (dim + BlockColumns - 1) / BlockColumns,
            codeWords = (dim + 3) / 4;
        int row = index / blocks,
            block = index - row * blocks;
        int first = block * BlockColumns;
        int width = dim - first < BlockColumns ? dim - first : BlockColumns;
        long source = (long)row * dim + first;
        long target = (long)row * (codeWords + blocks);
        TRow load = default;

        uint amax = 0;
        for (int j = 0; j < width; j++)
        {
            uint magnitude = Interop.FloatAsInt(load.Widen(rows[source + j])) & 0x7FFF_FFFFu;
            if (magnitude < 0x7F80_0000u && magnitude > amax)
                amax = magnitude;
        }
        uint scaleBits = Fp8RowQuantizer.BlockScaleBits(amax);
        // 1/scale, a power of two in [2^-120, 2^126]: exponent field 254 − the scale's.
        double inverse = Interop.IntAsFloat((254u - (scaleBits >> 23)) << 23);

        for (int w = 0; w < (width + 3) / 4; w++)
        {
            uint word = 0;
            for (int b = 0; b < 4; b++)
            {
                int j = 4 * w + b;
                if (j >= width)
                    break;
                word |= (uint)Code(load.Widen(rows[source + j]), inverse) << (8 * b);
            }
            wire[target + first / 4 + w] = (int)word;
        }
        wire[target + codeWords + block] = (int)scaleBits;
    }

    /// <summary>
    /// One thread per value: its code (byte <c>c mod 4</c> of word <c>c/4</c>) times its block's scale, rounded to
    /// the row type.
    /// </summary>
    /// <param name="index">row · D + column.</param>
    /// <param name="wire"><c>[R, WordsPerRow(D)]</c> int32.</param>
    /// <param name="dim">D.</param>
    /// <param name="rows"><c>[R, D]</c> values, overwritten.</param>
    public static void Dequantize<TElement, TRow>(Index1D index, ArrayView<int> wire, int dim, ArrayView<TElement> rows)
        where TElement : unmanaged
        where TRow : struct, IDeviceRow<TElement>
    {
        int blocks = (dim + BlockColumns - 1) / BlockColumns,
            codeWords = (dim + 3) / 4;
        int row = index / dim,
            column = index - row * dim;
        long start = (long)row * (codeWords + blocks);
        uint code = ((uint)wire[start + column / 4] >> (8 * (column & 3))) & 0xFFu;
        float scale = Interop.IntAsFloat((uint)wire[start + codeWords + column / BlockColumns]);
        TRow store = default;
        rows[index] = store.Narrow(Value(code, scale));
    }

    /// <summary>The E4M3 code of <paramref name="value"/> / scale (= value · <paramref name="inverse"/>).</summary>
    private static byte Code(float value, double inverse)
    {
        uint bits = Interop.FloatAsInt(value);
        if ((bits & 0x7FFF_FFFFu) >= 0x7F80_0000u)
            return (byte)(((bits >> 24) & 0x80u) | 0x7Fu);
        float scaled = (float)(value * inverse);
        return Float8E4M3.Encode(Interop.FloatAsInt(scaled));
    }

    /// <summary>
    /// The code's value times <paramref name="scale"/>; NaN codes give the host's quiet NaN, sign kept.
    /// </summary>
    private static float Value(uint code, float scale)
    {
        uint sign = (code & 0x80u) << 24,
            magnitude = code & 0x7Fu;
        if (magnitude == 0x7Fu)
            return Interop.IntAsFloat(sign | 0x7FC0_0000u);
        uint exponent = magnitude >> 3,
            mantissa = magnitude & 7u;
        // Normal codes are 1.m · 2^(e-7): the float32 pattern directly; subnormal codes m · 2^-9 (exact products).
        float widened =
            exponent != 0
                ? Interop.IntAsFloat(((exponent + 120u) << 23) | (mantissa << 20))
                : (float)((double)mantissa * (1.0 / 512.0));
        double product = (double)widened * scale;
        return Interop.IntAsFloat(sign | Interop.FloatAsInt((float)product));
    }
}
