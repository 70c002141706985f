"""Reference data for the demo dealer group: stores, models and prices, names, number plans."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreSpec:
    code: str
    name: str
    brand: str
    city: str
    address: str
    plate_prefix: str  # province character + city letter
    area_code: str  # landline trunk code without the leading 0
    landline_first_digits: str  # local numbers start with one of these
    did_block: str  # the store's own DIDs: <area><block>1000 sales, ...2000 service


STORES: tuple[StoreSpec, ...] = (
    StoreSpec("bj-volvo", "北京沃尔沃亚运村4S店", "Volvo", "Beijing", "北京市朝阳区北辰东路18号",
              "京A", "10", "568", "6488"),
    StoreSpec("sh-bmw", "上海宝马浦东4S店", "BMW", "Shanghai", "上海市浦东新区龙阳路2277号",
              "沪A", "21", "56", "5888"),
    StoreSpec("gz-honda", "广州广汽本田天河4S店", "GAC Honda", "Guangzhou", "广州市天河区黄埔大道西668号",
              "粤A", "20", "38", "3866"),
    StoreSpec("cq-ford", "重庆长安福特渝北4S店", "Changan Ford", "Chongqing", "重庆市渝北区金开大道88号",
              "渝A", "23", "6", "6788"),
    StoreSpec("hk-haima", "海口海马国兴4S店", "Haima", "Haikou", "海口市美兰区国兴大道66号",
              "琼A", "898", "6", "6588"),
)  # fmt: skip

# Share of customers per store (bigger cities, bigger stores).
STORE_WEIGHTS = (0.26, 0.28, 0.2, 0.16, 0.1)

# brand -> (model, list price CNY)
MODELS: dict[str, tuple[tuple[str, int], ...]] = {
    "Volvo": (("XC40", 265_000), ("XC60", 369_000), ("XC90", 599_000), ("S60", 285_000), ("S90", 409_000),
              ("EX30", 200_000)),
    "BMW": (("325Li", 309_000), ("530Li", 449_000), ("X1", 279_000), ("X3", 399_000), ("X5", 599_000),
            ("i3", 350_000)),
    "GAC Honda": (("Accord 雅阁", 179_000), ("Fit 飞度", 100_000), ("Vezel 缤智", 129_000), ("Breeze 皓影", 179_000),
                  ("Avancier 冠道", 239_000)),
    "Changan Ford": (("Focus 福克斯", 112_000), ("Mondeo 蒙迪欧", 189_000), ("Escape 锐际", 169_000),
                     ("Edge 锐界", 239_000), ("Explorer 探险者", 299_000)),
    "Haima": (("Haima 7X", 113_000), ("Haima 8S", 105_000), ("Haima 6P", 100_000)),
}  # fmt: skip

# World manufacturer identifiers of the brands' Chinese joint ventures (first three VIN characters).
WMI = {"Volvo": "LVY", "BMW": "LBV", "GAC Honda": "LHG", "Changan Ford": "LVS", "Haima": "LH1"}

# Mainland mobile number blocks (all carriers); 11 digits in total.
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
    "158", "159", "166", "176", "177", "180", "181", "182", "183", "186", "187", "188", "189", "198", "199",
)  # fmt: skip

SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"), ("赵", "Zhao"),
    ("黄", "Huang"), ("周", "Zhou"), ("吴", "Wu"), ("徐", "Xu"), ("孙", "Sun"), ("胡", "Hu"), ("朱", "Zhu"),
    ("高", "Gao"), ("林", "Lin"), ("何", "He"), ("郭", "Guo"), ("马", "Ma"), ("罗", "Luo"), ("梁", "Liang"),
    ("宋", "Song"), ("郑", "Zheng"), ("谢", "Xie"), ("韩", "Han"), ("唐", "Tang"), ("冯", "Feng"), ("于", "Yu"),
    ("董", "Dong"), ("萧", "Xiao"), ("程", "Cheng"), ("曹", "Cao"), ("袁", "Yuan"), ("邓", "Deng"), ("许", "Xu"),
    ("傅", "Fu"), ("沈", "Shen"), ("曾", "Zeng"), ("彭", "Peng"), ("吕", "Lv"), ("苏", "Su"), ("卢", "Lu"),
    ("蒋", "Jiang"), ("蔡", "Cai"), ("贾", "Jia"), ("丁", "Ding"), ("魏", "Wei"), ("薛", "Xue"), ("叶", "Ye"),
    ("阎", "Yan"), ("余", "Yu"), ("潘", "Pan"), ("杜", "Du"), ("戴", "Dai"), ("夏", "Xia"), ("钟", "Zhong"),
    ("汪", "Wang"), ("田", "Tian"), ("任", "Ren"), ("姜", "Jiang"), ("范", "Fan"), ("方", "Fang"), ("石", "Shi"),
    ("姚", "Yao"), ("谭", "Tan"), ("廖", "Liao"), ("邹", "Zou"), ("熊", "Xiong"), ("金", "Jin"), ("陆", "Lu"),
)  # fmt: skip

GIVEN_NAMES: tuple[tuple[str, str], ...] = (
    ("伟", "Wei"), ("芳", "Fang"), ("娜", "Na"), ("敏", "Min"), ("静", "Jing"), ("丽", "Li"), ("强", "Qiang"),
    ("磊", "Lei"), ("军", "Jun"), ("洋", "Yang"), ("勇", "Yong"), ("艳", "Yan"), ("杰", "Jie"), ("娟", "Juan"),
    ("涛", "Tao"), ("明", "Ming"), ("超", "Chao"), ("秀英", "Xiuying"), ("霞", "Xia"), ("平", "Ping"),
    ("刚", "Gang"), ("桂英", "Guiying"), ("建华", "Jianhua"), ("文", "Wen"), ("华", "Hua"), ("建国", "Jianguo"),
    ("鑫", "Xin"), ("宇", "Yu"), ("浩", "Hao"), ("晨", "Chen"), ("欣怡", "Xinyi"), ("子涵", "Zihan"),
    ("梓轩", "Zixuan"), ("雨桐", "Yutong"), ("浩然", "Haoran"), ("思远", "Siyuan"), ("婷", "Ting"), ("雪", "Xue"),
    ("琳", "Lin"), ("晓东", "Xiaodong"), ("海燕", "Haiyan"), ("志强", "Zhiqiang"), ("红梅", "Hongmei"),
    ("建军", "Jianjun"), ("丹", "Dan"), ("萍", "Ping"), ("辉", "Hui"), ("鹏", "Peng"), ("斌", "Bin"), ("波", "Bo"),
    ("佳", "Jia"), ("颖", "Ying"), ("倩", "Qian"), ("凯", "Kai"), ("俊杰", "Junjie"), ("嘉怡", "Jiayi"),
    ("一鸣", "Yiming"), ("子豪", "Zihao"), ("欣然", "Xinran"), ("天宇", "Tianyu"), ("晓燕", "Xiaoyan"),
    ("玉兰", "Yulan"), ("国庆", "Guoqing"), ("春梅", "Chunmei"), ("立新", "Lixin"), ("文博", "Wenbo"),
)  # fmt: skip

COMPANY_WORDS = (
    "华信", "远航", "恒通", "金桥", "东方", "瑞丰", "宏达", "新宇", "天元", "鼎盛", "博远", "中联", "泰和", "长城",
    "海川", "嘉禾", "明德", "盛世", "安达", "启航",
)  # fmt: skip
COMPANY_TRADES = ("科技", "物流", "贸易", "建设", "实业", "租赁", "传媒", "医药", "餐饮", "能源")
CONTACT_TITLES = ("行政经理", "车队主管", "采购经理", "总经理助理", "办公室主任", "财务经理")

CUSTOMER_SOURCES = ("walk_in", "web", "referral", "autohome", "dongchedi", "event", "phone", "wechat")
PERSON_PHONE_LABELS = ("mobile", "mobile 2", "home", "office")

SERVICE_DESCRIPTIONS = (
    "常规保养 Routine maintenance",
    "更换机油机滤 Oil and filter change",
    "更换刹车片 Brake pads",
    "空调检修 Air-conditioning check",
    "轮胎更换 Tyre replacement",
    "钣金喷漆 Body and paint repair",
    "故障灯检查 Warning light diagnosis",
    "首保 First service",
)
