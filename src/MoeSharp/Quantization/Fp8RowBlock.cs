using MoeSharp.Tensors;

namespace MoeSharp.Quantization;

/// <summary>
/// Rows quantised by <see cref="Fp8RowQuantizer"/>: <see cref="Codes"/> <c>[Rows, Dim]</c> and <see cref="Scales"/>
/// <c>[Rows, ceil(Dim/128)]</c>, both row-major; element <c>(r, c)</c> stands for
/// <c>Codes[r·Dim + c] · Scales[r·ceil(Dim/128) + c/128]</c>.
/// </summary>
public sealed class Fp8RowBlock
{
    /// <summary>An all-zero block of <paramref name="rows"/> rows of <paramref name="dim"/> columns.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is negative, <paramref name="dim"/> is zero, or the codes
    /// would not fit one array.</exception>
    public Fp8RowBlock(int rows, int dim)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        long count = (long)rows * dim;
        if (count > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), rows, $"{rows} × {dim} codes exceed one array");
        }
        Rows = rows;
        Dim = dim;
        Codes = new Float8E4M3[count];
        Scales = new float[(long)rows * Fp8RowQuantizer.ScalesPerRow(dim)];
    }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Columns per row.</summary>
    public int Dim { get; }

    /// <summary>The E4M3 codes, <c>[Rows, Dim]</c>.</summary>
    public Float8E4M3[] Codes { get; }

    /// <summary>The power-of-two scales, <c>[Rows, ceil(Dim/128)]</c>.</summary>
    public float[] Scales { get; }

    /// <summary>Bytes the block occupies on the wire: codes plus float32 scales.</summary>
    public long WireBytes => (long)Rows * Fp8RowQuantizer.WireBytesPerRow(Dim);
}
