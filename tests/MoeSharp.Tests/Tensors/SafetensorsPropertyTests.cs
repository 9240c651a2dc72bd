using CsCheck;
using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>
/// Random tensors of every dtype and shape (zero-sized dimensions and scalars included) round-trip bitwise.
/// </summary>
public class SafetensorsPropertyTests
{
    private static readonly Gen<Tensor> GenTensor =
        from dtype in Gen.OneOfConst(DType.Float32, DType.BFloat16, DType.Int32, DType.Int64)
        from shape in Gen.Int[0, 5].Array[0, 4]
        let count = shape.Aggregate(1, (a, b) => a * b)
        // Random bytes rather than random numbers, so NaN payloads, -0 and subnormals all appear.
        from bytes in Gen.Byte.Array[count * dtype.SizeOf()]
        select Build(dtype, shape, bytes);

    private static readonly Gen<(KeyValuePair<string, Tensor>[] Tensors, Dictionary<string, string> Metadata)> GenFile =
        from tensors in GenTensor.Array[0, 6]
        from metadata in Gen.Dictionary(
            Gen.String[Gen.Char.AlphaNumeric, 1, 8],
            Gen.String[Gen.Char['\0', '\uD7FF'], 0, 12]
        )[0, 4]
        select (tensors.Select((t, i) => new KeyValuePair<string, Tensor>($"t{i}.{t.DType}", t)).ToArray(), metadata);

    private static Tensor Build(DType dtype, int[] shape, byte[] bytes)
    {
        Tensor t = Tensor.Uninitialized(dtype, shape);
        bytes.CopyTo(t.AsBytes());
        return t;
    }

    [Fact]
    public void RandomFilesRoundTripBitwise()
    {
        GenFile.Sample(
            file =>
            {
                var stream = new MemoryStream();
                SafetensorsFile.WriteTo(stream, file.Tensors, file.Metadata);
                byte[] bytes = stream.ToArray();

                foreach (
                    SafetensorsContent back in new[]
                    {
                        SafetensorsFile.ReadFrom(bytes),
                        SafetensorsFile.ReadFrom(new MemoryStream(bytes)),
                        SafetensorsFile.ReadFrom(new NonSeekableStream(bytes)),
                    }
                )
                {
                    Assert.Equal(file.Tensors.Select(t => t.Key), back.Names);
                    Assert.Equal(
                        file.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal),
                        back.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal)
                    );
                    foreach (var (name, tensor) in file.Tensors)
                        Assert.True(tensor.BitwiseEquals(back[name]), name);
                }

                // Writing what was read reproduces the file byte for byte.
                var again = new MemoryStream();
                SafetensorsFile.WriteTo(again, SafetensorsFile.ReadFrom(bytes), file.Metadata);
                Assert.Equal(bytes, again.ToArray());
            },
            iter: 300
        );
    }
}
