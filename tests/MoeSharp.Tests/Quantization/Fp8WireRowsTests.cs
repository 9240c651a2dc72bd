using MoeSharp.Compute;
using MoeSharp.Quantization;
using MoeSharp.Tensors;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Quantization;

/// <summary>
/// The host's FP8 wire rows (<see cref="Fp8WireRows"/>, <see cref="HostFp8RowKernels"/>): layout and sizes, the golden
/// files' codes and scales in the wire layout, dequantisation equal to <see cref="Fp8RowQuantizer"/>'s, and shape
/// errors.
/// </summary>
public class Fp8WireRowsTests
{
    [Theory]
    [InlineData(1, 1, 2)]
    [InlineData(4, 1, 2)]
    [InlineData(5, 2, 3)]
    [InlineData(128, 32, 33)]
    [InlineData(129, 33, 35)]
    [InlineData(7168, 1792, 1848)]
    public void Sizes(int dim, int codeWords, int words)
    {
        Assert.Equal(codeWords, Fp8WireRows.CodeWords(dim));
        Assert.Equal(words, Fp8WireRows.WordsPerRow(dim));
        Assert.Equal(4 * words, Fp8WireRows.BytesPerRow(dim));
    }

    [Fact]
    public void AtD7168_ARowIs7392Bytes_0516TimesBFloat16() =>
        Assert.Equal(7392.0 / 14336.0, (double)Fp8WireRows.BytesPerRow(7168) / (7168 * 2));

    [Fact]
    public void GoldenFiles_InTheWireLayout_AndBackAsTheQuantizerDequantises()
    {
        int checkedBlocks = 0;
        foreach (Fp8GoldenBlock block in Fp8GoldenRows.Blocks())
        {
            Tensor wire = Tensor.Zeros(DType.Int32, block.X.Rows, Fp8WireRows.WordsPerRow(block.X.RowLength));
            wire.AsSpan<int>().Fill(-1); // pad bytes must be written, not left over
            HostFp8RowKernels.Instance.QuantizeRows(block.X, wire);
            string? mismatch = Fp8GoldenRows.WireMismatch(block, wire.AsSpan<int>());
            Assert.True(mismatch is null, mismatch);

            foreach (DType outType in new[] { DType.Float32, DType.BFloat16 })
            {
                Tensor back = Tensor.Zeros(outType, block.X.Rows, block.X.RowLength);
                HostFp8RowKernels.Instance.DequantizeRows(wire, back);
                Tensor expected = Fp8RowQuantizer.Dequantize(Fp8RowQuantizer.Quantize(block.X), outType);
                Assert.True(back.BitwiseEquals(expected), $"{block.Name}: dequantised {outType} differs");
            }
            checkedBlocks++;
        }
        Assert.True(checkedBlocks >= 2, $"only {checkedBlocks} golden blocks");
    }

    [Fact]
    public void ManyRows_InParallel_EqualRowByRow()
    {
        // Large enough for HostParallel to split the rows over threads.
        var random = new Random(5);
        const int rows = 300,
            dim = 1000;
        var values = new float[rows * dim];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-30, 30)));
        Tensor x = Tensor.FromArray(values, rows, dim);
        Tensor wire = Tensor.Zeros(DType.Int32, rows, Fp8WireRows.WordsPerRow(dim));
        Fp8WireRows.Quantize(x, wire);
        for (int r = 0; r < rows; r += 37)
        {
            Tensor one = Tensor.FromArray(values.AsSpan(r * dim, dim).ToArray(), 1, dim);
            Tensor oneWire = Tensor.Zeros(DType.Int32, 1, Fp8WireRows.WordsPerRow(dim));
            Fp8WireRows.Quantize(one, oneWire);
            Assert.True(
                wire.AsSpan<int>()
                    .Slice(r * oneWire.ElementCount, oneWire.ElementCount)
                    .SequenceEqual(oneWire.AsSpan<int>()),
                $"row {r}"
            );
        }
    }

    [Fact]
    public void BadShapes_NameTheArgumentAndSizes()
    {
        Tensor x = Tensor.Zeros(DType.Float32, 3, 130);
        var error = Assert.Throws<ArgumentException>(() => Fp8WireRows.Quantize(x, Tensor.Zeros(DType.Int32, 3, 34)));
        Assert.Equal("wire", error.ParamName);
        Assert.Contains("[3, 35]", error.Message);
        error = Assert.Throws<ArgumentException>(() => Fp8WireRows.Quantize(x, Tensor.Zeros(DType.Float32, 3, 35)));
        Assert.Equal("wire", error.ParamName);
        error = Assert.Throws<ArgumentException>(() =>
            Fp8WireRows.Dequantize(Tensor.Zeros(DType.Int32, 3, 35), Tensor.Zeros(DType.Int32, 3, 130))
        );
        Assert.Equal("rows", error.ParamName);
    }
}
