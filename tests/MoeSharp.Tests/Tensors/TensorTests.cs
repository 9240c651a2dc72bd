using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>The tensor type's shape handling, equality and dtype conversions.</summary>
public class TensorTests
{
    [Fact]
    public void ReshapeSharesStorageAndChecksTheCount()
    {
        Tensor t = Tensor.FromArray(new[] { 1f, 2f, 3f, 4f, 5f, 6f }, 2, 3);
        Tensor r = t.Reshape(3, 2);
        Assert.Equal(new[] { 3, 2 }, r.ShapeArray());
        Assert.Equal(2, r.RowLength);
        r.AsSpan<float>()[0] = 42f;
        Assert.Equal(42f, t.AsSpan<float>()[0]);
        var e = Assert.Throws<ArgumentException>(() => t.Reshape(4, 2));
        Assert.Equal("shape", e.ParamName);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Reshape(-2, -3));
        Assert.Equal(0, Tensor.Zeros(DType.Int64, 0, 5).Reshape(5, 0, 2).ElementCount);
    }

    [Fact]
    public void FromArrayRejectsAShapeThatDoesNotMatch()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.FromArray(new[] { 1, 2, 3 }, 2, 2));
        Assert.Equal("shape", e.ParamName);
        Assert.Contains("4 elements", e.Message);
        Assert.Contains("3", e.Message);
        Assert.Throws<NotSupportedException>(() => Tensor.FromArray(new short[] { 1 }, 1));
    }

    [Fact]
    public void FromArrayWrapsWithoutCopying()
    {
        var data = new long[] { 1, 2, 3, 4 };
        Tensor t = Tensor.FromArray(data, 2, 2);
        Assert.Equal(DType.Int64, t.DType);
        t.Row<long>(1)[0] = 30;
        Assert.Equal(30, data[2]);
        Assert.Equal(32, t.ByteCount);
        Assert.Throws<InvalidOperationException>(() => t.AsSpan<int>());
    }

    [Fact]
    public void BitwiseEqualsComparesDTypeShapeAndBytes()
    {
        Tensor a = Tensor.FromArray(new[] { 1f, float.NaN }, 2);
        Assert.True(a.BitwiseEquals(a.Clone()));
        Assert.False(a.BitwiseEquals(a.Reshape(1, 2)));
        Assert.False(Tensor.FromArray(new[] { 0f }, 1).BitwiseEquals(Tensor.FromArray(new[] { -0f }, 1)));
        Assert.False(Tensor.FromArray(new[] { 0 }, 1).BitwiseEquals(Tensor.FromArray(new[] { 0f }, 1)));
        float otherNaN = BitConverter.UInt32BitsToSingle(0x7FC0_0001);
        Assert.False(a.BitwiseEquals(Tensor.FromArray(new[] { 1f, otherNaN }, 2)));
        Assert.True(Tensor.Zeros(DType.BFloat16, 0, 3).BitwiseEquals(Tensor.Zeros(DType.BFloat16, 0, 3)));
        Assert.False(Tensor.Zeros(DType.BFloat16, 0, 3).BitwiseEquals(Tensor.Zeros(DType.BFloat16, 3, 0)));
    }

    [Fact]
    public void ToFloat32IsExactFromEveryDType()
    {
        Tensor b = Tensor.FromArray(new[] { BFloat16.FromBits(0x3FC0), BFloat16.FromBits(0xFF80) }, 2);
        Assert.Equal(new[] { 1.5f, float.NegativeInfinity }, b.ToFloat32().AsSpan<float>().ToArray());
        Assert.Equal(
            new[] { -7f, 16_777_216f },
            Tensor.FromArray(new[] { -7, 16_777_216 }, 2).ToFloat32().AsSpan<float>().ToArray()
        );
        Assert.Equal(new[] { 3f }, Tensor.FromArray(new[] { 3L }, 1).ToFloat32().AsSpan<float>().ToArray());

        Tensor f = Tensor.FromArray(new[] { 2.5f }, 1, 1);
        Tensor copy = f.ToFloat32();
        Assert.True(copy.BitwiseEquals(f));
        copy.AsSpan<float>()[0] = 0f;
        Assert.Equal(2.5f, f.AsSpan<float>()[0]); // a copy, not a view
    }

    [Fact]
    public void ToBFloat16RoundsToNearestEven()
    {
        float tie = BitConverter.UInt32BitsToSingle(0x3F81_8000);
        Tensor t = Tensor.FromArray(new[] { 1f, tie, float.NaN, -0f }, 2, 2).ToBFloat16();
        Assert.Equal(DType.BFloat16, t.DType);
        Assert.Equal(new[] { 2, 2 }, t.ShapeArray());
        BFloat16[] values = t.AsSpan<BFloat16>().ToArray();
        Assert.Equal(0x3F80, values[0].Bits);
        Assert.Equal(0x3F82, values[1].Bits);
        Assert.True(float.IsNaN(values[2]));
        Assert.Equal(0x8000, values[3].Bits);
        Assert.True(t.BitwiseEquals(t.ToBFloat16()));
        Assert.True(t.ToFloat32().ToBFloat16().BitwiseEquals(t));
        Assert.Throws<InvalidOperationException>(() => Tensor.Zeros(DType.Int32, 1).ToBFloat16());
    }

    [Fact]
    public void ZerosAndShapeAccessors()
    {
        Tensor t = Tensor.Zeros(DType.Int32, 3, 4);
        Assert.Equal(2, t.Rank);
        Assert.Equal(3, t.Rows);
        Assert.Equal(4, t.Dim(1));
        Assert.Equal("[3, 4]", t.ShapeString);
        Assert.All(t.AsSpan<int>().ToArray(), v => Assert.Equal(0, v));
        Tensor scalar = Tensor.Zeros(DType.Float32);
        Assert.Equal(1, scalar.ElementCount);
        Assert.Equal(1, scalar.Rows);
        Assert.Equal("Tensor(Float32, [])", scalar.ToString());
    }
}
