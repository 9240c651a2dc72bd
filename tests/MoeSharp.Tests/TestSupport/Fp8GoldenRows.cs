using System.Runtime.InteropServices;
using MoeSharp.Tensors;

namespace MoeSharp.Testing;

/// <summary>One block of a <c>golden/fp8</c> file: its input rows and the reference codes and scale bits.</summary>
internal sealed record Fp8GoldenBlock(string Name, Tensor X, byte[] Codes, uint[] ScaleBits);

/// <summary>
/// The <c>golden/fp8/*.safetensors</c> files (kind <c>fp8_rows</c>, written in float64 by
/// <c>golden/fp8/make_fp8_golden.py</c>), read block by block for the wire-row tests of every backend.
/// </summary>
internal static class Fp8GoldenRows
{
    /// <summary>
    /// <c>fp8/</c> under <see cref="GoldenFiles.OverrideVariable"/> when that is set, else the repository's
    /// <c>golden/fp8/</c> found above the test binaries.
    /// </summary>
    public static string Folder
    {
        get
        {
            string? overridden = Environment.GetEnvironmentVariable(GoldenFiles.OverrideVariable);
            if (!string.IsNullOrEmpty(overridden))
                return Path.Combine(overridden, "fp8");
            for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "golden", "fp8");
                if (File.Exists(Path.Combine(candidate, "make_fp8_golden.py")))
                    return candidate;
            }
            throw new DirectoryNotFoundException($"no golden/fp8 folder above {AppContext.BaseDirectory}");
        }
    }

    /// <summary>Every block of every file in the folder, in file-name order.</summary>
    public static IEnumerable<Fp8GoldenBlock> Blocks()
    {
        foreach (string path in Directory.GetFiles(Folder, "*.safetensors").Order(StringComparer.Ordinal))
        {
            byte[] file = File.ReadAllBytes(path);
            using LazySafetensorsFile golden = LazySafetensorsFile.Open(path);
            int blocks = int.Parse(golden.Metadata["blocks"], System.Globalization.CultureInfo.InvariantCulture);
            for (int b = 0; b < blocks; b++)
            {
                SafetensorsTensorInfo info = golden.Tensors[$"x.b{b}"];
                int rows = checked((int)info.Shape[0]),
                    dim = checked((int)info.Shape[1]);
                Span<byte> raw = Raw(file, info);
                Tensor x =
                    info.DTypeName == "BF16"
                        ? Tensor.FromArray(MemoryMarshal.Cast<byte, BFloat16>(raw).ToArray(), rows, dim)
                        : Tensor.FromArray(MemoryMarshal.Cast<byte, float>(raw).ToArray(), rows, dim);
                byte[] codes = Raw(file, golden.Tensors[$"codes.b{b}"]).ToArray();
                uint[] scales = MemoryMarshal.Cast<byte, uint>(Raw(file, golden.Tensors[$"scales.b{b}"])).ToArray();
                yield return new Fp8GoldenBlock($"{Path.GetFileName(path)} block {b}", x, codes, scales);
            }
        }
    }

    /// <summary>
    /// The first difference between host wire rows and a golden block (codes, zero pad bytes, scale bits), or null.
    /// </summary>
    public static string? WireMismatch(Fp8GoldenBlock block, ReadOnlySpan<int> wire)
    {
        int rows = block.X.Rows,
            dim = block.X.RowLength;
        int words = Quantization.Fp8WireRows.WordsPerRow(dim),
            codeWords = Quantization.Fp8WireRows.CodeWords(dim),
            scales = Quantization.Fp8RowQuantizer.ScalesPerRow(dim);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<int> row = wire.Slice(r * words, words);
            ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(row[..codeWords]);
            for (int c = 0; c < codeWords * 4; c++)
            {
                byte expected = c < dim ? block.Codes[r * dim + c] : (byte)0;
                if (bytes[c] != expected)
                    return $"{block.Name} row {r} byte {c}: expected 0x{expected:X2}, got 0x{bytes[c]:X2}";
            }
            for (int b = 0; b < scales; b++)
            {
                uint expected = block.ScaleBits[r * scales + b],
                    actual = (uint)row[codeWords + b];
                if (expected != actual)
                    return $"{block.Name} row {r} scale {b}: expected 0x{expected:X8}, got 0x{actual:X8}";
            }
        }
        return null;
    }

    private static Span<byte> Raw(byte[] file, SafetensorsTensorInfo info) =>
        file.AsSpan(checked((int)info.FileOffset), checked((int)info.ByteLength));
}
