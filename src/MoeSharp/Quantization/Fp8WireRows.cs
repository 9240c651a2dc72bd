using System.Runtime.InteropServices;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Quantization;

/// <summary>
/// The FP8 wire row of dispatch (<see cref="Dispatch.RowWireFormat.Fp8E4M3"/>): one int32 tensor row per token row,
/// <c>ceil(D/4)</c> words of E4M3 codes (code of column c in byte <c>c mod 4</c> of word <c>c/4</c>, little-endian;
/// the bytes past D are zero) followed by <c>ceil(D/128)</c> float32 scales by their bits
/// (<see cref="Fp8RowQuantizer"/>'s codes and scales). Codes and scales travel in one tensor, so one all-to-all-v
/// moves them; int32 words because every collective backend already moves int32.
/// </summary>
public static class Fp8WireRows
{
    /// <summary>Int32 words of one code section: <c>ceil(dim / 4)</c>.</summary>
    public static int CodeWords(int dim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        return (dim + 3) / 4;
    }

    /// <summary>Int32 words of one wire row: <c>ceil(dim/4) + ceil(dim/128)</c>.</summary>
    public static int WordsPerRow(int dim) => CodeWords(dim) + Fp8RowQuantizer.ScalesPerRow(dim);

    /// <summary>Bytes of one wire row (7392 at D = 7168, against 14336 for a bfloat16 row).</summary>
    public static int BytesPerRow(int dim) => sizeof(int) * WordsPerRow(dim);

    /// <summary>
    /// Quantises host rows <c>[R, D]</c> (float32 or bfloat16) into host wire rows <c>[R, WordsPerRow(D)]</c> int32,
    /// in parallel over rows (each row's words depend on that row alone).
    /// </summary>
    /// <exception cref="ArgumentException">Shapes or dtypes do not match.</exception>
    public static void Quantize(Tensor rows, Tensor wire)
    {
        int dim = CheckPair(rows, wire);
        int words = WordsPerRow(dim),
            codeWords = CodeWords(dim),
            scales = Fp8RowQuantizer.ScalesPerRow(dim);
        bool bf16 = rows.DType == DType.BFloat16;
        HostParallel.For(
            rows.Rows,
            (long)dim * rows.DType.SizeOf(),
            (start, end) =>
            {
                Span<int> all = wire.AsSpan<int>();
                for (int r = start; r < end; r++)
                {
                    Span<int> row = all.Slice(r * words, words);
                    Span<byte> codeBytes = MemoryMarshal.AsBytes(row[..codeWords]);
                    codeBytes[dim..].Clear();
                    Span<Float8E4M3> codes = MemoryMarshal.Cast<byte, Float8E4M3>(codeBytes[..dim]);
                    Span<float> rowScales = MemoryMarshal.Cast<int, float>(row.Slice(codeWords, scales));
                    if (bf16)
                        Fp8RowQuantizer.Quantize(rows.AsSpan<BFloat16>().Slice(r * dim, dim), dim, codes, rowScales);
                    else
                        Fp8RowQuantizer.Quantize(rows.AsSpan<float>().Slice(r * dim, dim), dim, codes, rowScales);
                }
            }
        );
    }

    /// <summary>
    /// Dequantises host wire rows <c>[R, WordsPerRow(D)]</c> into host rows <c>[R, D]</c> (float32 exactly, bfloat16
    /// rounded once to nearest even), in parallel over rows.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes or dtypes do not match.</exception>
    public static void Dequantize(Tensor wire, Tensor rows)
    {
        int dim = CheckPair(rows, wire);
        int words = WordsPerRow(dim),
            codeWords = CodeWords(dim),
            scales = Fp8RowQuantizer.ScalesPerRow(dim);
        bool bf16 = rows.DType == DType.BFloat16;
        HostParallel.For(
            rows.Rows,
            (long)dim * rows.DType.SizeOf(),
            (start, end) =>
            {
                ReadOnlySpan<int> all = wire.AsSpan<int>();
                for (int r = start; r < end; r++)
                {
                    ReadOnlySpan<int> row = all.Slice(r * words, words);
                    ReadOnlySpan<Float8E4M3> codes = MemoryMarshal.Cast<byte, Float8E4M3>(
                        MemoryMarshal.AsBytes(row[..codeWords])[..dim]
                    );
                    ReadOnlySpan<float> rowScales = MemoryMarshal.Cast<int, float>(row.Slice(codeWords, scales));
                    if (bf16)
                        Fp8RowQuantizer.Dequantize(codes, rowScales, dim, rows.AsSpan<BFloat16>().Slice(r * dim, dim));
                    else
                        Fp8RowQuantizer.Dequantize(codes, rowScales, dim, rows.AsSpan<float>().Slice(r * dim, dim));
                }
            }
        );
    }

    /// <summary>
    /// D of a matching pair: rows <c>[R, D]</c> float32/bfloat16, wire <c>[R, WordsPerRow(D)]</c> int32.
    /// </summary>
    internal static int CheckPair(Tensor rows, Tensor wire)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(wire);
        if ((rows.DType != DType.Float32 && rows.DType != DType.BFloat16) || rows.Rank != 2 || rows.Dim(1) == 0)
        {
            throw new ArgumentException(
                $"rows must be float32 or bfloat16 [R, D] with D > 0; got {rows.DType} {rows.ShapeString}",
                nameof(rows)
            );
        }
        int dim = rows.Dim(1);
        if (
            wire.DType != DType.Int32
            || wire.Rank != 2
            || wire.Dim(0) != rows.Dim(0)
            || wire.Dim(1) != WordsPerRow(dim)
        )
        {
            throw new ArgumentException(
                $"wire must be int32 [{rows.Dim(0)}, {WordsPerRow(dim)}] (the FP8 wire rows of D = {dim}); got "
                    + $"{wire.DType} {wire.ShapeString}",
                nameof(wire)
            );
        }
        return dim;
    }
}
