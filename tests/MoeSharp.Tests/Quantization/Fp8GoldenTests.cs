using System.Runtime.InteropServices;
using MoeSharp.Quantization;
using MoeSharp.Tensors;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Quantization;

/// <summary>
/// Replays every <c>golden/fp8/*.safetensors</c> file (kind <c>fp8_rows</c>, written in float64 by
/// <c>golden/fp8/make_fp8_golden.py</c>, which shares no code with MoeSharp): codes, scales and dequantised rows
/// must match bitwise. Files are found by listing the folder and read by their metadata, never by a list of cases.
/// </summary>
public class Fp8GoldenTests
{
    /// <summary>The <c>golden/fp8/</c> folder (<see cref="Fp8GoldenRows.Folder"/>: the build copies only the
    /// top-level golden files).</summary>
    private static string Folder => Fp8GoldenRows.Folder;

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (string path in Directory.GetFiles(Folder, "*.safetensors").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(path));
        }
        return data;
    }

    [Fact]
    public void TheFolderHoldsBothInputTypes() => Assert.True(Files().Count >= 2);

    [Theory]
    [MemberData(nameof(Files))]
    public void QuantisationMatchesTheFloat64ReferenceBitwise(string fileName)
    {
        string path = Path.Combine(Folder, fileName);
        byte[] file = File.ReadAllBytes(path);
        using LazySafetensorsFile golden = LazySafetensorsFile.Open(path);
        Assert.Equal("fp8_rows", golden.Metadata["kind"]);
        Assert.Equal(
            Fp8RowQuantizer.BlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
            golden.Metadata["block_columns"]
        );
        int blocks = int.Parse(golden.Metadata["blocks"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(4 * blocks, golden.Tensors.Count);
        for (int b = 0; b < blocks; b++)
        {
            SafetensorsTensorInfo xInfo = golden.Tensors[$"x.b{b}"];
            int rows = checked((int)xInfo.Shape[0]),
                dim = checked((int)xInfo.Shape[1]);
            var codes = new Float8E4M3[rows * dim];
            var scales = new float[rows * Fp8RowQuantizer.ScalesPerRow(dim)];
            var back = new float[rows * dim];
            Span<byte> x = Raw(file, xInfo);
            if (xInfo.DTypeName == "BF16")
            {
                Fp8RowQuantizer.Quantize(MemoryMarshal.Cast<byte, BFloat16>(x), dim, codes, scales);
            }
            else
            {
                Assert.Equal("F32", xInfo.DTypeName);
                Fp8RowQuantizer.Quantize(MemoryMarshal.Cast<byte, float>(x), dim, codes, scales);
            }
            Fp8RowQuantizer.Dequantize(codes, scales, dim, back);

            SafetensorsTensorInfo codesInfo = golden.Tensors[$"codes.b{b}"];
            Assert.Equal("F8_E4M3", codesInfo.DTypeName);
            Assert.Equal(xInfo.Shape, codesInfo.Shape);
            byte[] expectedCodes = Raw(file, codesInfo).ToArray();
            byte[] actualCodes = MemoryMarshal.AsBytes(codes.AsSpan()).ToArray();
            for (int i = 0; i < expectedCodes.Length; i++)
            {
                if (expectedCodes[i] != actualCodes[i])
                {
                    Assert.Fail(
                        $"{fileName} block {b} element {i} (row {i / dim}, column {i % dim}): expected code "
                            + $"0x{expectedCodes[i]:X2}, got 0x{actualCodes[i]:X2}"
                    );
                }
            }
            uint[] expectedScales = MemoryMarshal.Cast<byte, uint>(Raw(file, golden.Tensors[$"scales.b{b}"])).ToArray();
            Assert.Equal(expectedScales, MemoryMarshal.Cast<float, uint>(scales.AsSpan()).ToArray());
            float[] expectedBack = MemoryMarshal.Cast<byte, float>(Raw(file, golden.Tensors[$"deq.b{b}"])).ToArray();
            var backBf16 = new BFloat16[rows * dim];
            Fp8RowQuantizer.Dequantize(codes, scales, dim, backBf16);
            for (int i = 0; i < expectedBack.Length; i++)
            {
                bool same = float.IsNaN(expectedBack[i])
                    ? float.IsNaN(back[i])
                    : BitConverter.SingleToUInt32Bits(expectedBack[i]) == BitConverter.SingleToUInt32Bits(back[i]);
                Assert.True(same, $"{fileName} block {b} element {i}: expected {expectedBack[i]:R}, got {back[i]:R}");
                Assert.Equal(BFloat16.FromSingle(back[i]), backBf16[i]);
            }
        }
    }

    private static Span<byte> Raw(byte[] file, SafetensorsTensorInfo info) =>
        file.AsSpan(checked((int)info.FileOffset), checked((int)info.ByteLength));
}
