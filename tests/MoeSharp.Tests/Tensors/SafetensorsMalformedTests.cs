using System.Text;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>
/// Every malformation is rejected with an <see cref="InvalidDataException"/> that names the file and the problem.
/// </summary>
public class SafetensorsMalformedTests
{
    private const string Source = "bad.safetensors";

    /// <summary>
    /// Reads the bytes through every entry point (span, seekable stream, non-seekable stream) and checks each
    /// rejects them with a message naming the source and containing every fragment.
    /// </summary>
    private static void AssertRejected(byte[] bytes, params string[] fragments)
    {
        var attempts = new (string How, Action Read)[]
        {
            ("span", () => SafetensorsFile.ReadFrom(bytes, Source)),
            ("seekable stream", () => SafetensorsFile.ReadFrom(new MemoryStream(bytes), Source)),
            ("non-seekable stream", () => SafetensorsFile.ReadFrom(new NonSeekableStream(bytes), Source)),
        };
        foreach (var (how, read) in attempts)
        {
            var e = Assert.Throws<InvalidDataException>(read);
            Assert.StartsWith(Source + ": ", e.Message);
            foreach (string fragment in fragments)
            {
                if (!e.Message.Contains(fragment, StringComparison.Ordinal))
                    Assert.Fail($"via {how}: '{e.Message}' lacks '{fragment}'");
            }
        }
    }

    private static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(7)]
    public void FileShorterThanEightBytes(int length) =>
        AssertRejected(new byte[length], $"file is {length} bytes", "shorter than the 8-byte header length");

    [Fact]
    public void HeaderLengthBeyondFile()
    {
        byte[] bytes = SafetensorsBytes.Build(Encoding.UTF8.GetBytes("{}      "), 0, declaredHeaderLength: 64);
        AssertRejected(bytes, "header length 64 goes beyond the end of the file");
    }

    [Fact]
    public void HeaderLengthAbsurd()
    {
        byte[] bytes = SafetensorsBytes.Build(Encoding.UTF8.GetBytes("{}      "), 0, declaredHeaderLength: 100_000_001);
        AssertRejected(bytes, "header length 100000001", "100000000-byte limit");
        AssertRejected(
            SafetensorsBytes.Build([], 0, declaredHeaderLength: ulong.MaxValue),
            $"header length {ulong.MaxValue}"
        );
    }

    [Fact]
    public void HeaderNotUtf8() =>
        AssertRejected(
            SafetensorsBytes.Build([(byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}'], 0),
            "not valid UTF-8",
            "0xFF",
            "header offset 2"
        );

    [Theory]
    [InlineData("{\"a\": ", "not valid JSON")]
    [InlineData("", "not valid JSON")]
    [InlineData("[1, 2]", "header is a JSON array, not an object")]
    [InlineData("\"text\"", "header is a JSON string, not an object")]
    public void HeaderNotJsonObject(string header, string fragment) =>
        AssertRejected(SafetensorsBytes.Build(header, 0), fragment);

    [Theory]
    [InlineData("dtype")]
    [InlineData("shape")]
    [InlineData("data_offsets")]
    public void EntryMissingKey(string key)
    {
        var parts = new Dictionary<string, string>
        {
            ["dtype"] = "\"F32\"",
            ["shape"] = "[1]",
            ["data_offsets"] = "[0,4]",
        };
        parts.Remove(key);
        string header = "{\"w\":{" + string.Join(",", parts.Select(p => $"\"{p.Key}\":{p.Value}")) + "}}";
        AssertRejected(SafetensorsBytes.Build(header, 4), "tensor 'w'", $"has no '{key}'");
    }

    [Theory]
    [InlineData("{\"w\":[1,2]}", "entry is a JSON array")]
    [InlineData(
        "{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}",
        "'dtype' is a JSON number (5), not a string"
    )]
    [InlineData(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}",
        "'shape' is a JSON string (\"1\"), not an array"
    )]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "shape[0] is 1.5")]
    [InlineData(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}",
        "shape[0] is \"1\": a JSON string, not an integer"
    )]
    [InlineData(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
        "'data_offsets' is [0], not an array of two integers"
    )]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"b\":0}}}", "not an array of two integers")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,null]}}", "data_offsets[1] is null")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", "negative offset")]
    [InlineData(
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}",
        "shape[0] is 99999999999999999999"
    )]
    public void EntryWithWrongJsonTypes(string header, string fragment) =>
        AssertRejected(SafetensorsBytes.Build(header, 4), "tensor 'w'", fragment);

    [Theory]
    [InlineData("F16")]
    [InlineData("U8")]
    [InlineData("F64")]
    [InlineData("f32")]
    [InlineData("NOPE")]
    public void UnsupportedDType(string dtype) =>
        AssertRejected(
            SafetensorsBytes.Build("{" + Entry("w", dtype, "[2]", 0, 4) + "}", 4),
            "tensor 'w'",
            $"dtype '{dtype}' is not supported",
            "F32, BF16, I32 and I64"
        );

    [Fact]
    public void NegativeDimension() =>
        AssertRejected(
            SafetensorsBytes.Build("{" + Entry("w", "F32", "[2,-3]", 0, 4) + "}", 4),
            "tensor 'w'",
            "negative dimension -3 at index 1"
        );

    [Fact]
    public void TooManyElements() =>
        AssertRejected(
            SafetensorsBytes.Build("{" + Entry("w", "F32", "[65536,65536]", 0, 4) + "}", 4),
            "tensor 'w'",
            "more than a tensor can hold"
        );

    [Fact]
    public void BeginAfterEnd() =>
        AssertRejected(
            SafetensorsBytes.Build("{" + Entry("w", "F32", "[1]", 8, 4) + "}", 8),
            "tensor 'w'",
            "data_offsets [8, 4] begin after end"
        );

    [Fact]
    public void OffsetsBeyondDataBlock()
    {
        byte[] bytes = SafetensorsBytes.Build(
            "{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("w", "F32", "[2]", 4, 12) + "}",
            8
        );
        AssertRejected(bytes, "tensor 'w'", "data_offsets [4, 12] go beyond the data block");
    }

    [Fact]
    public void ByteLengthDisagreesWithShape() =>
        AssertRejected(
            SafetensorsBytes.Build("{" + Entry("w", "F32", "[2,3]", 0, 20) + "}", 20),
            "tensor 'w'",
            "span 20 bytes but F32 [2,3] needs 24"
        );

    [Fact]
    public void OverlappingTensors() =>
        AssertRejected(
            SafetensorsBytes.Build(
                "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("b", "F32", "[2]", 4, 12) + "}",
                12
            ),
            "tensor 'b'",
            "overlap tensor 'a' at [0, 8]"
        );

    [Fact]
    public void EmptyTensorInsideAnotherOverlaps() =>
        AssertRejected(
            SafetensorsBytes.Build(
                "{" + Entry("a", "F32", "[2]", 0, 8) + "," + Entry("z", "F32", "[0]", 4, 4) + "}",
                8
            ),
            "tensor 'z'",
            "overlap tensor 'a'"
        );

    [Fact]
    public void HoleBetweenTensors() =>
        AssertRejected(
            SafetensorsBytes.Build(
                "{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("b", "F32", "[1]", 8, 12) + "}",
                12
            ),
            "tensor 'b'",
            "hole",
            "[4, 8) belong to no tensor"
        );

    [Fact]
    public void HoleAtStart() =>
        AssertRejected(
            SafetensorsBytes.Build("{" + Entry("a", "F32", "[1]", 4, 8) + "}", 8),
            "tensor 'a'",
            "[0, 4) belong to no tensor"
        );

    [Fact]
    public void TrailingBytesAfterLastTensor() =>
        AssertRejected(SafetensorsBytes.Build("{" + Entry("a", "F32", "[1]", 0, 4) + "}", 6), "belong to no tensor");

    [Theory]
    [InlineData(
        "{\"__metadata__\":{\"seed\":7}}",
        "'__metadata__' value for key 'seed' is a JSON number (7), not a string"
    )]
    [InlineData("{\"__metadata__\":{\"ok\":\"1\",\"flag\":true}}", "key 'flag' is a JSON true")]
    [InlineData("{\"__metadata__\":{\"list\":[\"a\"]}}", "key 'list' is a JSON array")]
    [InlineData("{\"__metadata__\":[\"a\"]}", "'__metadata__' is a JSON array, not an object of strings")]
    public void MetadataValuesMustBeStrings(string header, string fragment) =>
        AssertRejected(SafetensorsBytes.Build(header, 0), fragment);

    [Fact]
    public void DuplicateTensorName() =>
        AssertRejected(
            SafetensorsBytes.Build(
                "{" + Entry("a", "F32", "[1]", 0, 4) + "," + Entry("a", "F32", "[1]", 4, 8) + "}",
                8
            ),
            "tensor 'a'",
            "key 'a' twice"
        );

    [Fact]
    public void ReadingAPathNamesTheFile()
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-st-").FullName;
        try
        {
            string path = Path.Combine(dir, "broken.safetensors");
            File.WriteAllBytes(path, SafetensorsBytes.Build("{" + Entry("w", "F16", "[2]", 0, 4) + "}", 4));
            var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Read(path));
            Assert.StartsWith(path + ": tensor 'w': dtype 'F16' is not supported", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ValidEdgeCasesAreAccepted()
    {
        // Zero-sized dimensions, a scalar, trailing header spaces, explicit null metadata, offsets out of header order.
        string header =
            "{\"__metadata__\":null,"
            + Entry("s", "I64", "[]", 8, 16)
            + ","
            + Entry("e", "F32", "[0,4]", 8, 8)
            + ","
            + Entry("f", "BF16", "[2,2]", 0, 8)
            + ","
            + Entry("z", "I32", "[3,0]", 16, 16)
            + "}   ";
        byte[] bytes = SafetensorsBytes.Build(header, 16);
        foreach (
            SafetensorsContent content in new[]
            {
                SafetensorsFile.ReadFrom(bytes, Source),
                SafetensorsFile.ReadFrom(new MemoryStream(bytes), Source),
                SafetensorsFile.ReadFrom(new NonSeekableStream(bytes), Source),
            }
        )
        {
            Assert.Equal(new[] { "f", "e", "s", "z" }, content.Names);
            Assert.Empty(content.Metadata);
            Assert.Equal(new[] { 0, 4 }, content["e"].ShapeArray());
            Assert.Equal(0, content["e"].ElementCount);
            Assert.Equal(0, content["s"].Rank);
            Assert.Equal(
                BitConverter.ToInt64(new byte[] { 8, 9, 10, 11, 12, 13, 14, 15 }),
                content["s"].AsSpan<long>()[0]
            );
            Assert.Equal(new byte[] { 0, 1, 2, 3, 4, 5, 6, 7 }, content["f"].AsBytes().ToArray());
            Assert.Equal(DType.Int32, content["z"].DType);
        }
    }

    [Fact]
    public void EmptyHeaderIsAnEmptyFile()
    {
        SafetensorsContent content = SafetensorsFile.ReadFrom(SafetensorsBytes.Build("{}      ", 0), Source);
        Assert.Equal(0, content.Count);
        Assert.Empty(content.Metadata);
    }
}
