using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>
/// <see cref="LazySafetensorsFile"/> refuses headers whose sizes overflow a long with a format error naming the file
/// and the tensor, and refuses element ranges past a tensor's end however large the first element.
/// </summary>
public sealed class LazySafetensorsFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("moesharp-lazy-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    private string Write(string header, int dataLength)
    {
        string path = Path.Combine(_folder, $"{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, SafetensorsBytes.Build("{" + header + "}", dataLength));
        return path;
    }

    [Theory]
    // 2^62 F32 elements are 2^64 bytes, 0 as a long: the entry matched [0, 0] and reads returned B's bytes.
    [InlineData("F32", "[4611686018427387904]", 2305843009213693951)]
    [InlineData("BF16", "[2, 2305843009213693952]", 4611686018427387903)]
    // The element count itself overflows: a bare OverflowException, which the CLI reported as a runtime failure.
    [InlineData("F32", "[4294967296,4294967296]", 2305843009213693951)]
    // A dtype MoeSharp does not read has no size to check, but its element count must still fit.
    [InlineData("X9", "[4294967296,4294967296]", 9223372036854775807)]
    public void A_shape_too_large_for_a_long_is_a_format_error_naming_the_tensor(string dtype, string shape, long max)
    {
        string path = Write(Entry("A", dtype, shape, 0, 0) + "," + Entry("B", "F32", "[2]", 0, 8), 8);
        var e = Assert.Throws<InvalidDataException>(() => LazySafetensorsFile.Open(path).Dispose());
        Assert.StartsWith($"{path}: tensor 'A': {dtype} {shape} has more than {max} elements", e.Message);
    }

    [Fact]
    public void A_zero_dimension_makes_any_other_dimensions_empty()
    {
        string path = Write(Entry("A", "F32", "[0, 4611686018427387904]", 0, 0), 0);
        using LazySafetensorsFile file = LazySafetensorsFile.Open(path);
        Assert.Equal(0, file.Tensors["A"].ElementCount);
    }

    [Theory]
    [InlineData(long.MaxValue, 1)] // firstElement + 1 wrapped negative and passed: it read the 4 bytes before B
    [InlineData(long.MaxValue - 1, 2)]
    [InlineData(1, 2)]
    [InlineData(3, 0)]
    [InlineData(-1, 1)]
    public void A_range_past_the_tensor_is_out_of_range(long firstElement, int count)
    {
        string path = Write(Entry("A", "F32", "[2]", 0, 8) + "," + Entry("B", "F32", "[2]", 8, 16), 16);
        using LazySafetensorsFile file = LazySafetensorsFile.Open(path);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadFloat32("B", firstElement, new float[count]));
        Assert.Equal("firstElement", e.ParamName);
        Assert.Contains("tensor 'B' [2]", e.Message);
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 1)]
    [InlineData(2, 0)]
    public void A_range_inside_the_tensor_reads_its_bytes(long firstElement, int count)
    {
        string path = Write(Entry("A", "F32", "[2]", 0, 8) + "," + Entry("B", "F32", "[2]", 8, 16), 16);
        using LazySafetensorsFile file = LazySafetensorsFile.Open(path);
        var values = new float[count];
        file.ReadFloat32("B", firstElement, values);
        // SafetensorsBytes fills data byte i with i, so B's element j is the bytes 8 + 4j .. 11 + 4j.
        for (int i = 0; i < count; i++)
        {
            long j = firstElement + i;
            Assert.Equal(
                BitConverter.ToSingle([(byte)(8 + 4 * j), (byte)(9 + 4 * j), (byte)(10 + 4 * j), (byte)(11 + 4 * j)]),
                values[i]
            );
        }
    }
}
